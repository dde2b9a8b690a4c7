"""Stage 1 for a still image: nothing to cut.  The image becomes one clip row of ``type`` image,
its file placed under clips/ as a video's clips are (a hard link when it can be), so every later
stage finds it where it finds clips and the output folder stays whole when the sources move."""

from __future__ import annotations

from pathlib import PurePosixPath

from video_caption.inputs import Source, path_under
from video_caption.manifest import IMAGE
from video_caption.media.image import copy_upright, probe_image


def image_clip(source: Source, output_folder, min_side: int = 0) -> tuple[dict, list[dict]]:
    """(scene row, [clip row]) for an image source; no clip when it is smaller than ``min_side``.
    Raises MediaError when it cannot be read."""
    info = probe_image(source.path)
    scene_row = {"video_path": source.key, "type": IMAGE, **info.as_row(), "cuts": []}
    if min_side and min(info.width, info.height) < min_side:
        scene_row.update(num_clips=0, skipped=f"resolution {info.width}x{info.height} below {min_side}")
        return scene_row, []
    name = PurePosixPath(source.key).name
    folder = path_under(output_folder / "clips", source.key)
    folder.mkdir(parents=True, exist_ok=True)
    copy_upright(source.path, folder / name, info)
    clip = {"video_path": str(PurePosixPath("clips", source.key, name)), "source_path": source.key, "type": IMAGE,
            **info.as_row()}
    scene_row["num_clips"] = 1
    return scene_row, [clip]
