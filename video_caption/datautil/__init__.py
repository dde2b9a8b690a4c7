"""datautil: curation over manifests and output folders (filter, merge, difference, shard, sample, stats,
info, export/import), run as ``python -m video_caption.datautil``."""
