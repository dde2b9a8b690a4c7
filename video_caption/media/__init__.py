"""Everything that touches media files, one concern per module:

- ``process``: ``MediaError``, the subprocess helper ``run``, ``media_path`` (the absolute paths every
  tool is given) and ``die_with_parent``; the bottom layer, importing nothing from the project.
- ``probe``: ``VideoInfo`` and ``probe`` (PyAV, in-process), and ``ffmpeg_start_time`` (ffprobe: where
  the ffmpeg command line's -ss counts from, for a clip's audio).
- ``decode``: frame decoding with PyAV (``decode_frames``: all of a file; ``frames_at`` and
  ``read_frames``: chosen frames, seeking over the GOPs nobody wants, so a clip's range of a long
  source costs that range) and which frames to sample (``uniform_indices``, ``middle_indices``,
  ``keyframe_indices``).
- ``encode``: ``EncoderSettings`` and ``Encoder`` (libx264 and the MP4 muxer in-process, fed the
  decoded frames; the source's audio added by ffmpeg).

Decoding and encoding video use PyAV (libav in-process): it was the fastest way to get every decoded
frame with its timestamp on this machine (docs/decoders.md), and an in-process encoder per clip costs
no process start and no copy of the frames through a pipe.  A clip's audio uses the ffmpeg
command-line tools (PyAV 18 crashes on some audio tracks), always with argument lists and
absolute paths so that no file name is read as an option, a protocol or shell syntax.
"""
