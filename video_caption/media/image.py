"""Still images (jpg, png, webp): probed, read and copied with Pillow, upright as their EXIF
orientation says (a phone photo taken sideways is read as it is displayed, as a video's rotation is)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.media.process import MediaError, check_not_empty

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
ORIENTATION = 0x0112  # the EXIF tag; 1 is upright


def is_image(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, after the EXIF orientation
    height: int
    codec: str  # Pillow's format name, lower case: jpeg, png, webp
    upright: bool  # the stored pixels need no turn

    def as_row(self) -> dict:
        return {"num_frames": 1, "width": self.width, "height": self.height, "codec": self.codec}


def _open(path: str | os.PathLike):
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.load()  # the whole file: a truncated image fails here, not in a later stage
            upright = image.getexif().get(ORIENTATION, 1) == 1
            return ImageOps.exif_transpose(image), image.format, upright
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        check_not_empty(path)
        raise MediaError(f"cannot read image: {exc}") from exc


def probe_image(path: str | os.PathLike) -> ImageInfo:
    image, fmt, upright = _open(path)
    return ImageInfo(image.width, image.height, (fmt or "").lower(), upright)


def read_image(path: str | os.PathLike, fmt: str = "rgb24") -> np.ndarray:
    """The image upright as HxWx3 ("rgb24", "bgr24") or HxW ("gray": from BGR, as ``read_frames``)."""
    import cv2

    image, _, _ = _open(path)
    rgb = np.asarray(image.convert("RGB"))
    if fmt == "rgb24":
        return np.ascontiguousarray(rgb)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if fmt == "gray" else bgr


def copy_upright(source: Path, target: Path, info: ImageInfo | None = None) -> ImageInfo:
    """``source`` as ``target``, written atomically: a hard link (or a byte copy across file systems)
    of an upright image; an image with an EXIF turn is saved turned, so that a trainer reading the
    pixels without EXIF (EasyAnimate's, Open-Sora's) sees it upright.  ``info``: the source's
    ``probe_image``, when the caller has it (an upright image is then not decoded again)."""
    info = info or probe_image(source)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if info.upright:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        else:
            image, fmt, _ = _open(source)
            image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return info
