"""Stage 1's settings (the schema: video_caption/settings.py)."""

from __future__ import annotations

from video_caption.cut.events import MIN_SIMILARITY
from video_caption.settings import SWITCH, TEXT, Setting, choice, integer, number, path

DETECTORS = ("content", "adaptive", "transnetv2")
ABOUT = """Stage 1: detect shots and cut single-shot clips of MIN_SECONDS..MAX_SECONDS.
  VIDEO_FOLDER=/data/raw OUTPUT_FOLDER=/data/curated bash stage_1_video_cut.sh [flags]
Writes OUTPUT_FOLDER/clips/, meta_scene_info.jsonl (one row per source), meta_clips.jsonl (one per clip)
and errors.jsonl.  Images (jpg, png, webp) among the sources are not cut: each is one clip of type image.
Rerunning the same command resumes where a previous run stopped; a source cut with other settings
(detector, thresholds, clip lengths, transitions, codec, quality, clip mode) is cut again, its old rows
and clips moved to superseded/."""


def _one(env: str, kind, default=None, help: str = "", group: str = "", **more) -> Setting:
    return Setting(env, kind, default, help, (1,), group, **more)


SETTINGS = [
    _one("VIDEO_FOLDER", path(what="a folder or list file"), required=True, group="input",
         help="the sources: a folder of videos and images (searched recursively) or a .txt/.csv/.jsonl list "
              "(column or key video_path or path)"),
    _one("DETECTOR", choice(DETECTORS), "content", group="shot detection",
         help="content or adaptive: PySceneDetect; transnetv2: the neural network"),
    _one("THRESHOLD", number(), group="shot detection", default_text="content 27, adaptive 3, transnetv2 0.5",
         help="the detector's threshold"),
    _one("MIN_SCENE_LEN", integer(), 6, group="shot detection", help="PySceneDetect's shortest shot, frames"),
    _one("BLACK_LEVEL", number(), 4.0, group="shot detection",
         help="content/adaptive: also cut where the mean level crosses this (0-255; 0 turns it off)"),
    _one("DETECTOR_DEVICE", TEXT, group="shot detection", default_text="this rank's GPU if present, else cpu",
         help="torch device of the transnetv2 detector"),
    _one("EVENT_SIMILARITY", number(), MIN_SIMILARITY, group="shot detection",
         help="a candidate cut whose picture from before comes back within 1 s after it (brightness and "
              "contrast normalised, same colour; correlation at least this) is a flash, strobe, whip pan, fast "
              "zoom or light switched inside the shot, not a cut; above 1: every candidate cuts"),
    _one("TRANSITIONS", SWITCH, True, group="shot detection",
         help="find dissolves, fades, wipes and other gradual changes and keep clips clear of them; off: hard "
              "cuts only (less memory for very large frames)"),
    _one("MIN_SECONDS", number(), 3.0, group="clip planning", help="shortest clip; shorter shots give none"),
    _one("MAX_SECONDS", number(), 10.0, group="clip planning", help="longest clip; longer shots are split"),
    _one("MARGIN_FRAMES", integer(), 2, group="clip planning", help="frames trimmed at each side of a cut"),
    _one("MIN_SOURCE_SIDE", integer(), 0, group="clip planning",
         help="skip sources whose shorter side is smaller, pixels (0: any)"),
    _one("CLIPS", choice(("encoded", "deferred")), "encoded", group="encoding",
         help="encoded: write each clip's file now; deferred: only each clip's source and frame range, read "
              "by stages 2-3 from the source; stage 3's materialize encodes the survivors"),
    _one("CODEC", TEXT, "libx264", group="encoding", help="the clips' video encoder"),
    _one("PRESET", TEXT, "veryfast", group="encoding", help="the encoder's preset"),
    _one("CRF", integer(), 22, group="encoding", help="the encoder's constant rate factor"),
    _one("FAST", SWITCH, False, group="encoding", help="preset ultrafast at CRF 18: faster, bigger clips"),
    _one("KEEP_AUDIO", SWITCH, False, group="encoding",
         help="keep the source's first audio track, trimmed to the clip (AAC, 128 kb/s)"),
    _one("ENCODER_THREADS", integer(), 0, group="encoding",
         help="threads per encoder (0: the encoder's choice; 1 makes clips byte-reproducible)"),
    _one("WORKERS", integer(minimum=1), group="execution",
         default_text="one per usable core, at most one per 3 GiB of available memory",
         help="sources cut in parallel on each machine, shared by its ranks (an 8K source needs about 9 GB)"),
    _one("SOURCE_STALL_TIMEOUT", number(), 300.0, group="execution",
         help="seconds a source may decode no frame before it is given up (an errors.jsonl row); 0: no limit"),
]
