"""Stage 3: caption clips with a vision-language model and an LLM."""
