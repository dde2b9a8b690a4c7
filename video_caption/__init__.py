"""video_caption: raw videos -> single-shot clips -> scored, filtered clips -> captions."""

__version__ = "0.1.0"
