"""A hard-negative set for shot detection: one shot per file, with events that are no cut.

    python bench/hard_negatives.py --out DIR [--files 24] [--seed 0] [--videos ../shared/data/videos] [--no-verify]

Each file is 6-12 s of one shot (support/hard_negatives.py defines the construction): a stretch of
a single-shot SEGMENTS stretch of the shared videos (``footage``), or a slow pan or zoom over one
real frame of them (``pan``, ``zoom``), backgrounds in turn.  It holds 1-3 events, at least 2 s
apart and 1 s from the file's ends, their kinds dealt from a deck across the set: a camera flash
(1-2 frames 60-90 % toward white), a strobe (6-10 frames alternately brighter and darker), a whip
pan (10-16 frames sliding sideways by half to all of the width and back, motion-blurred), a fast
zoom (8-14 frames in to 1.6-2.5x and back out) and lights going off and on (to 15-35 % of the level
in 1-2 frames, dark for 0.5-2 s, back in 1-2 frames).  Sizes, frame rates and codecs cycle
through VARIANTS.  The same seed gives the same files and ground truth (the encoders may differ
in a few bits between runs).

DIR/ground_truth.json has bench/splice.py's schema: ``cuts`` and ``gradual`` are empty by
construction; ``events`` lists each event's kind and frame range ``first``..``last`` (inclusive,
the frames it alters), ``shots`` the one shot.  ``python bench/shot_detection.py --videos DIR``
scores detectors on it: every detected cut is a false one.

Each file is then decoded and checked (unless --no-verify): its frame count, and every frame
against the composed one (PSNR), stored per file as ``verified``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
sys.path.insert(0, str(REPO / "support"))
from hard_negatives import BACKGROUNDS, Event, Spec, build, compose, truth_row  # noqa: E402
from splicing import SEGMENTS, decoded_frames, psnr, set_arguments, variants  # noqa: E402

# (width, height, fps, codec, container), one file each in this order (cycled past the end)
VARIANTS = [
    (640, 360, Fraction(25), "libx264", "mp4"),
    (640, 360, Fraction(30000, 1001), "libvpx-vp9", "webm"),
    (640, 360, Fraction(24), "mpeg4", "mkv"),
    (1280, 720, Fraction(25), "libx264", "mp4"),
    (640, 360, Fraction(30000, 1001), "libx264", "mkv"),
    (854, 480, Fraction(24), "libvpx-vp9", "webm"),
    (360, 640, Fraction(25), "libx264", "mp4"),
    (640, 360, Fraction(30), "mpeg4", "mkv"),
]
DECK = ["flash", "strobe", "whip_pan", "fast_zoom", "lights_off"]
FILE_SECONDS = (6.0, 12.0)
EDGE_SECONDS = 1.0  # no event nearer the file's ends
GAP_SECONDS = 2.0  # between one event's last frame and the next one's first
EVENTS_PER_FILE = (1, 2, 2, 3, 3)


class Planner:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.deck: list[str] = []
        self.uses = {source: 0 for source in SEGMENTS}

    def _kind(self) -> str:
        if not self.deck:
            self.deck += self.rng.sample(DECK, len(DECK))
        return self.deck.pop()

    def event(self, kind: str, fps: Fraction) -> Event:
        """An event of ``kind`` placed at frame 0 (``file`` moves it)."""
        rng = self.rng
        if kind == "flash":
            return Event(kind, 0, rng.choice([1, 2]), rng.uniform(0.6, 0.9))
        if kind == "strobe":
            return Event(kind, 0, rng.randint(6, 10), rng.uniform(0.4, 0.65))
        if kind == "whip_pan":
            return Event(kind, 0, rng.randint(10, 16), rng.uniform(0.5, 1.0), direction=rng.choice([1, -1]))
        if kind == "fast_zoom":
            return Event(kind, 0, rng.randint(8, 14), rng.uniform(1.6, 2.5))
        ramp = rng.choice([1, 2])
        return Event(kind, 0, 2 * ramp + round(rng.uniform(0.5, 2.0) * fps), rng.uniform(0.15, 0.35), ramp=ramp)

    def _source(self, seconds: float) -> tuple[str, float]:
        """A source and a start in one of its SEGMENTS with ``seconds`` of room (0 for a still)."""
        fits = [(source, a, b) for source, segments in SEGMENTS.items() for a, b in segments if b - a >= seconds]
        source, a, b = self.rng.choices(fits, [1 / (1 + self.uses[s]) for s, _, _ in fits])[0]
        self.uses[source] += 1
        return source, round(self.rng.uniform(a, b - seconds), 3)

    def file(self, index: int, width: int, height: int, fps: Fraction, codec: str) -> Spec:
        rng = self.rng
        background = BACKGROUNDS[index % len(BACKGROUNDS)]
        seconds = rng.uniform(*FILE_SECONDS)
        if background == "footage":  # no longer than the longest stretch of one shot
            seconds = min(seconds, max(b - a for segments in SEGMENTS.values() for a, b in segments) - 0.1)
            source, start = self._source(seconds + 0.05)
            move = 0.0
        else:
            source, start = self._source(0.0)
            move = rng.choice([1, -1]) * rng.uniform(0.5, 1.0) if background == "pan" else \
                rng.uniform(1.15, 1.35) ** rng.choice([1, -1])
        frames = round(seconds * fps)
        edge, gap = round(EDGE_SECONDS * fps), round(GAP_SECONDS * fps)
        events = [self.event(self._kind(), fps) for _ in range(rng.choice(EVENTS_PER_FILE))]
        # drop events (back on the deck) until they fit, then share the slack at random between the gaps
        while len(events) > 1 and sum(e.frames for e in events) + (len(events) - 1) * gap > frames - 2 * edge:
            self.deck.append(events.pop().kind)
        slack = frames - 2 * edge - sum(e.frames for e in events) - (len(events) - 1) * gap
        marks = sorted(rng.randint(0, slack) for _ in events)
        placed, at = [], edge
        for e, extra, before in zip(events, marks, [0, *marks], strict=False):
            at += extra - before
            placed.append(Event(e.kind, at, e.frames, e.strength, e.ramp, e.direction))
            at += e.frames + gap
        return Spec(source, start, frames, width, height, fps, codec, background, move, tuple(placed))


def plan(files: int, seed: int) -> dict[str, Spec]:
    planner = Planner(seed)
    specs = {}
    for i, width, height, fps, codec, container, rate in variants(files, VARIANTS):
        spec = planner.file(i, width, height, fps, codec)
        specs[f"hardneg{i:02d}_{spec.background}_{width}x{height}_{rate}fps_{codec}.{container}"] = spec
    return specs


def check(spec: Spec, videos: Path, path: Path) -> dict:
    """Frames decoded and the worst PSNR of a decoded frame against the composed one."""
    frames, worst = 0, 99.0
    composed = compose(spec, videos)
    for image in decoded_frames(path):
        frames += 1
        expected = next(composed, None)
        if expected is not None:
            worst = min(worst, psnr(image, expected[0]))
    composed.close()
    return {"frames": frames, "min_psnr_db": round(float(worst), 1), "ok": bool(frames == spec.frames and worst >= 25)}


def main() -> int:
    args = set_arguments(__doc__, 24, VIDEOS)
    truth, kinds, failed, began = {}, Counter(), False, time.perf_counter()
    for name, spec in plan(args.files, args.seed).items():
        start = time.perf_counter()
        build(spec, args.videos, args.out / name)
        row = truth_row(spec)
        kinds.update(e["kind"] for e in row["events"])
        line = f"{name}: {spec.frames} frames, " + ", ".join(f"{e['kind']} {e['first']}-{e['last']}"
                                                           for e in row["events"])
        if not args.no_verify:
            row["verified"] = check(spec, args.videos, args.out / name)
            failed |= not row["verified"]["ok"]
            line += f"; check {'ok' if row['verified']['ok'] else 'FAILED'}: {row['verified']['frames']} frames, " \
                    f"min PSNR {row['verified']['min_psnr_db']} dB"
        print(f"{line} ({time.perf_counter() - start:.1f} s)", flush=True)
        truth[name] = row
    doc = {
        "convention": "Frame indices are 0-based decoded frames. Hard-negative set (bench/hard_negatives.py, "
        "support/hard_negatives.py): every file is one shot by construction, so cuts and gradual are empty; "
        "events: [first, last] inclusive, the frames an added flash, strobe, whip pan, fast zoom or lights-off "
        "alters (frames first - 1 and last + 1 are the shot's own).",
        "generator": {"command": f"python bench/hard_negatives.py --out {args.out} --files {args.files} "
                                 f"--seed {args.seed}", "seed": args.seed},
        "files": truth,
    }
    (args.out / "ground_truth.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(truth)} files ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))} events) and "
          f"{args.out / 'ground_truth.json'} in {time.perf_counter() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
