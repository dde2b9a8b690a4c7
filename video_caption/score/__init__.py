"""Stage 2 (in progress): clip scoring and gated filtering."""
