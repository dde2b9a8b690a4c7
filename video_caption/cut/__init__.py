"""Stage 1: detect shots and cut single-shot clips (run it with ``python -m video_caption.cut``)."""
