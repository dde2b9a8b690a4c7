"""The HTML report of an output folder (python -m video_caption.report): collect.py reads the
manifests, thumbs.py makes the gallery's frame strips, plots.py draws with matplotlib, page.py
writes index.html and its data files."""
