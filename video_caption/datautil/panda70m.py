"""Panda-70M in: its metadata rows as clip rows over the videos a user downloaded, for stages 2 and 3.

Panda-70M is distributed as metadata, not clips (snap-research/Panda-70M, dataset_dataloading/README.md):
one CSV row per YouTube video, ``videoID``, ``url``, ``timestamp`` (its clips, a list of
``[start, end]`` times ``H:MM:SS.mmm``), ``caption`` and ``matching_score`` (a list each, one item per
clip).  The lists are Python literals, as its download worker reads them
(dataset_dataloading/video2dataset/video2dataset/workers/download_worker.py evaluates them; here
``ast.literal_eval``, which runs nothing), and the times are parsed as its clipping subsampler does
(subsamplers/clipping_subsampler.py, ``_get_seconds``).

Each clip becomes a deferred clip, the row stage 1 writes with ``CLIPS=deferred`` (materialize.deferred_fields):
its source file and frames ``[round(start * fps), round(end * fps))`` (Panda's times are frame times
rounded to the millisecond, so rounding gives its frames back), no file until stage 3's materialize
step (or ``datautil materialize``) encodes it with stage 1's default encoder settings.  Panda's
caption, matching score and the video's url are kept as reference columns (``panda_caption``,
``panda_matching_score``, ``panda_url``); stage 3 makes the captions.

A video is found in the videos folder (searched recursively) as ``<videoID>.<ext>``, or as yt-dlp's
default name ``<title> [<videoID>].<ext>``.  A video that is not there or cannot be read, and a
metadata row that cannot be parsed, are each one error (the video's ID and why), and the rest goes on.
"""

from __future__ import annotations

import ast
import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from video_caption.inputs import VIDEO_EXTENSIONS, safe_key
from video_caption.manifest import KEY, VIDEO
from video_caption.materialize import deferred_fields
from video_caption.media.encode import EncoderSettings
from video_caption.media.probe import VideoInfo, probe
from video_caption.media.process import MediaError

COLUMNS = ("videoID", "timestamp")  # what a row must have; url, caption, matching_score are kept when there
# Stage 1's default encoder (CODEC, PRESET, CRF; KEEP_AUDIO off): materialize makes the clips with it.
ENCODER = EncoderSettings(audio=False)
YT_DLP_NAME = re.compile(r"\[([^\[\]]+)\]$")  # yt-dlp's default output name ends with " [<id>]"


@dataclass(frozen=True)
class Span:
    """One Panda clip: its times in seconds, caption and matching score (None when not given)."""

    start: float
    end: float
    caption: str | None = None
    score: float | None = None


def seconds(value) -> float:
    """A Panda time as seconds: ``H:MM:SS.mmm`` (any number of hour digits), or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"(\d+):([0-5]?\d):(\d+(?:\.\d*)?)", str(value).strip())
    if not match:
        raise ValueError(f"time {value!r} is not H:MM:SS.mmm")
    hours, minutes, secs = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def _literal_list(text: str | None, column: str) -> list:
    try:
        value = ast.literal_eval((text or "").strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{column} is not a list literal: {(text or '')[:60]!r}") from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{column} is not a list: {(text or '')[:60]!r}")
    return list(value)


def spans(record: dict) -> list[Span]:
    """The clips of one metadata row (pure); ValueError naming what is wrong with it."""
    stamps = _literal_list(record.get("timestamp"), "timestamp")
    if stamps and not isinstance(stamps[0], (list, tuple)):  # one [start, end] pair, not a list of them
        stamps = [stamps]
    given = {column: _literal_list(record[column], column) for column in ("caption", "matching_score")
             if (record.get(column) or "").strip()}
    for column, values in given.items():
        if len(values) != len(stamps):
            raise ValueError(f"{len(stamps)} timestamps but {len(values)} items in {column}")
    found = []
    for i, stamp in enumerate(stamps):
        if len(stamp) != 2:
            raise ValueError(f"timestamp {i} is not a [start, end] pair: {stamp!r}")
        start, end = seconds(stamp[0]), seconds(stamp[1])
        if not end > start:
            raise ValueError(f"timestamp {i} ends before it starts: {stamp!r}")
        score = given["matching_score"][i] if "matching_score" in given else None
        found.append(Span(start, end, given["caption"][i] if "caption" in given else None,
                          None if score is None else float(score)))
    return found


def clip_rows(key: str, source_file: Path, info: VideoInfo, clips: list[Span], url: str | None
              ) -> tuple[list[dict], list[str]]:
    """(stage 1's deferred rows of the clips of the source ``key``, what is wrong with the others)
    (pure given the source's probe): frames at Panda's times, the last clipped to the video's end."""
    fps = float(info.fps)
    width, height = info.width // 2 * 2, info.height // 2 * 2  # stage 1 encodes even sizes
    rows, problems = [], []
    for i, clip in enumerate(clips):
        start, end = round(clip.start * fps), min(round(clip.end * fps), info.num_frames)
        if end - start < 1:
            problems.append(f"clip {i} ({clip.start:.3f}-{clip.end:.3f} s) holds no frame of the "
                            f"video's {info.num_frames} ({info.duration:.3f} s)")
            continue
        name = f"{PurePosixPath(key).stem}_{start:06d}-{end:06d}.mp4"  # as stage 1 names its clips
        row = {KEY: str(PurePosixPath("clips", key, name)), "source_path": key, "type": VIDEO,
               "start_frame": start, "end_frame": end, "start_time": round(start / fps, 6),
               "end_time": round(end / fps, 6), "duration": round((end - start) / fps, 6), "fps": round(fps, 6),
               "num_frames": end - start, "width": width, "height": height,
               **deferred_fields(source_file, ENCODER, info.has_audio)}
        reference = {"panda_caption": clip.caption, "panda_matching_score": clip.score, "panda_url": url}
        rows.append({**row, **{k: v for k, v in reference.items() if v is not None}})
    return rows, problems


def video_files(videos: Path) -> dict[str, Path]:
    """{video ID: its file} of the videos under ``videos``: a file named by its ID, or by yt-dlp's
    default ``<title> [<id>]``; of several files of one ID, the first by extension (mp4 first) and path."""
    found: dict[str, Path] = {}
    files = sorted((Path(folder) / name for folder, _, names in os.walk(videos) for name in names
                    if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith(".")),
                   key=lambda p: (VIDEO_EXTENSIONS.index(p.suffix.lower()), str(p)))
    for path in files:
        bracketed = YT_DLP_NAME.search(path.stem)
        for video_id in {path.stem, *([bracketed.group(1)] if bracketed else [])}:
            found.setdefault(video_id, path)
    return found


def read_metadata(path: Path) -> list[dict]:
    """The rows of a Panda-70M metadata CSV, as strings; ValueError for a file that is not one."""
    csv.field_size_limit(1 << 30)  # a video of many clips has long list cells
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not Panda-70M metadata: it lacks the column(s) {', '.join(missing)} "
                             f"(it has {', '.join(reader.fieldnames or []) or 'none'})")
        return list(reader)


def import_rows(path: Path, videos: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """(clip rows of every metadata row whose video is in ``videos``, (video ID, why) of the rest)."""
    if not videos.is_dir():
        raise FileNotFoundError(f"{videos}: no such folder of downloaded videos")
    files, rows, errors = video_files(videos), [], []
    for number, record in enumerate(read_metadata(path), start=2):  # line 1 is the header
        video_id = (record.get("videoID") or "").strip() or f"line {number}"
        try:
            clips = spans(record)
        except ValueError as exc:
            errors.append((video_id, f"{path.name} line {number}: {exc}"))
            continue
        source = files.get(video_id)
        if source is None:
            errors.append((video_id, f"no video {video_id} in {videos} (looked for {video_id}.mp4 and the "
                                     f"other video extensions, or '<title> [{video_id}].<ext>')"))
            continue
        try:
            info = probe(source)
        except MediaError as exc:
            errors.append((video_id, f"{source}: {exc}"))
            continue
        made, problems = clip_rows(safe_key(source, videos), Path(os.path.abspath(source)), info, clips,
                                   (record.get("url") or "").strip() or None)
        rows += made
        errors += [(video_id, f"{source.name}: {problem}") for problem in problems]
    return rows, errors
