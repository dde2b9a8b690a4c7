"""Stage 2: score clips (aesthetic, text, motion) and filter them through gates, cheapest first."""
