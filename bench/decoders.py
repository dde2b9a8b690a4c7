"""Which frame decoder should stage 1 use?  Time to get every frame of a file as a numpy array.

    python bench/decoders.py [FILE ...]

Each candidate decodes every frame to an 8-bit array (planar YUV 4:2:0 where the library can,
else BGR/RGB) with its own threading on.  ffmpeg to the null muxer is the reference (decode only).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = [REPO.parent / "shared/data/videos/pyscenedetect/testvideo.mp4",
           REPO.parent / "shared/data/videos/moviepy/big_buck_bunny_0_30.webm"]


def ffmpeg_null(path):
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"], check=True)
    return None


def pyav(path, fmt="yuv420p"):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format=fmt) is not None)


def ffmpeg_pipe(path):
    import av  # only to read the size

    with av.open(str(path)) as c:
        w, h = c.streams.video[0].width, c.streams.video[0].height
    size = w * h * 3 // 2
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                             "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"], stdout=subprocess.PIPE)
    n = 0
    while len(proc.stdout.read(size)) == size:
        n += 1
    proc.wait()
    return n


def opencv(path):
    import cv2

    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def decord2(path):
    import decord

    reader = decord.VideoReader(str(path))
    return sum(1 for i in range(len(reader)) if reader[i].asnumpy() is not None)


CANDIDATES = {"ffmpeg -f null (reference)": ffmpeg_null, "PyAV yuv420p": pyav,
              "PyAV bgr24": lambda p: pyav(p, "bgr24"), "ffmpeg rawvideo pipe": ffmpeg_pipe,
              "OpenCV VideoCapture (bgr)": opencv, "decord2 VideoReader (rgb)": decord2}


def main() -> None:
    files = [Path(f) for f in sys.argv[1:]] or DEFAULT
    print("| decoder | " + " | ".join(f.name for f in files) + " |")
    print("|---|" + "---|" * len(files))
    for name, fn in CANDIDATES.items():
        cells = []
        for f in files:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                try:
                    frames = fn(f)
                except Exception as exc:  # a decoder that cannot read the file is a result too
                    cells.append(f"fails: {type(exc).__name__}")
                    break
                best = min(best, time.perf_counter() - start)
            else:
                cells.append(f"{best:.2f} s" + (f" ({frames} frames)" if frames else ""))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
