"""A spliced test set with gradual transitions whose frame ranges are known by construction.

    python bench/splice.py --out DIR [--files 6] [--seed 0] [--videos ../shared/data/videos] [--no-verify]

Shots of 2-8 s of real footage from the shared test videos (single-shot stretches listed in
SEGMENTS; consecutive shots always from different files, at random places in them) are joined by
hard cuts, cross-dissolves (0.3-1.5 s), fades through black and through white (fade out, then fade
in) and wipes (xfade's wipeleft/wiperight/wipeup/wipedown), and written at several sizes (one
portrait), frame rates (24, 25, 30000/1001) and codecs (H.264 mp4, VP9 webm, MPEG-4 Part 2 mkv):
VARIANTS, one file each, 30-45 s long.  The same seed gives the same shots, transitions and
ground truth (the encoders may differ in a few bits between runs).

DIR/ground_truth.json has the schema of ../shared/data/videos/ground_truth.json, so
``python bench/shot_detection.py --videos DIR`` scores the set: per file ``cuts`` (first frame of
each new shot) and ``gradual`` ([first, last] inclusive: the first frame that differs from a pure
frame of the outgoing shot to the last that differs from a pure frame of the incoming one; a fade
through a colour covers fade-out, hold and fade-in), plus ``gradual_kinds`` (dissolve, fade_black,
fade_white, wipe, one per range), ``boundaries`` (every boundary in order, with its lengths) and
``shots`` (source, start, frames).  support/splicing.py defines the construction exactly.

Each file is then decoded and checked against the construction (unless --no-verify): every frame
against the composed one (PSNR), and within 2 frames of each boundary the blend weight (or the
wipe's edge) estimated from the decoded frame alone against the true one, within half a step,
which fails a range that is off by one frame at either end.  The check's figures are stored per
file as ``verified``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
sys.path.insert(0, str(REPO / "support"))
from splicing import (  # noqa: E402
    SEGMENTS,
    WIPES,
    Shot,
    Spec,
    Transition,
    build,
    set_arguments,
    truth_row,
    variants,
    verify,
)

# (width, height, fps, codec, container), one file each in this order (cycled past the end)
VARIANTS = [
    (640, 360, Fraction(25), "libx264", "mp4"),
    (1280, 720, Fraction(24), "libx264", "mp4"),
    (640, 360, Fraction(30000, 1001), "libvpx-vp9", "webm"),
    (360, 640, Fraction(30000, 1001), "libx264", "mp4"),
    (854, 480, Fraction(24), "mpeg4", "mkv"),
    (1280, 720, Fraction(30000, 1001), "mpeg4", "mkv"),
    (854, 480, Fraction(25), "libvpx-vp9", "webm"),
    (960, 540, Fraction(25), "libx264", "mkv"),
]
# Boundaries are dealt from this deck, reshuffled when used up, across the whole set.
DECK = ["cut"] * 3 + ["dissolve"] * 3 + ["fade_black", "fade_white", "wipe", "wipe"]
DISSOLVE_SECONDS = [0.3, 0.5, 0.75, 1.0, 1.5]
SHOT_SECONDS = (2.0, 8.0)
FILE_SECONDS = (30.0, 45.0)
OWN_SECONDS = 1.0  # each shot keeps at least this much untouched by its transitions


class Planner:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.deck: list[str] = []
        self.dissolves: list[float] = []
        self.wipes: list[str] = []
        self.uses = {source: 0 for source in SEGMENTS}

    def _deal(self, pile: list, fresh: list):
        if not pile:
            pile += self.rng.sample(fresh, len(fresh))
        return pile.pop()

    def transition(self, fps: Fraction) -> Transition:
        kind = self._deal(self.deck, DECK)

        def frames(seconds: float) -> int:
            return max(1, round(seconds * fps))

        if kind == "dissolve":
            return Transition("dissolve", frames=frames(self._deal(self.dissolves, DISSOLVE_SECONDS)))
        if kind == "wipe":
            return Transition("wipe", frames=frames(self.rng.uniform(0.4, 1.0)), variant=self._deal(self.wipes, WIPES))
        if kind == "cut":
            return Transition("cut")
        return Transition(kind, fade_out=frames(self.rng.uniform(0.3, 1.0)), hold=self.rng.choice([0, 0, frames(0.25)]),
                          fade_in=frames(self.rng.uniform(0.3, 1.0)))

    def shot(self, frames: int, fps: Fraction, previous: str | None) -> Shot:
        seconds = frames / fps + 0.05
        fits = [(source, a, b) for source, segments in SEGMENTS.items() for a, b in segments
                if source != previous and b - a >= seconds]
        weights = [1 / (1 + self.uses[source]) for source, _, _ in fits]
        source, a, b = self.rng.choices(fits, weights)[0]
        self.uses[source] += 1
        return Shot(source, round(self.rng.uniform(a, b - seconds), 3), frames)

    def file(self, width: int, height: int, fps: Fraction, codec: str) -> Spec:
        target = self.rng.uniform(*FILE_SECONDS) * fps
        shots: list[Shot] = []
        transitions: list[Transition] = []
        total, incoming, overlap = 0, 0, 0
        while True:
            outgoing = self.transition(fps)
            need = incoming + outgoing.parts()[0] + round(OWN_SECONDS * fps)
            previous = shots[-1].source if shots else None
            room = max(b - a for source, segments in SEGMENTS.items() if source != previous for a, b in segments)
            seconds = min(self.rng.uniform(*SHOT_SECONDS), room - 0.1)
            frames = max(round(seconds * fps), need)
            shots.append(self.shot(frames, fps, previous))
            total += frames - overlap
            if total >= target:
                break
            transitions.append(outgoing)
            incoming = outgoing.parts()[1]
            overlap = outgoing.frames if outgoing.kind in ("dissolve", "wipe") else 0
            total += outgoing.hold
        return Spec(tuple(shots), tuple(transitions), width, height, fps, codec)


def plan(files: int, seed: int) -> dict[str, Spec]:
    planner = Planner(seed)
    specs = {}
    for i, width, height, fps, codec, container, rate in variants(files, VARIANTS):
        specs[f"splice{i:02d}_{width}x{height}_{rate}fps_{codec}.{container}"] = planner.file(width, height, fps, codec)
    return specs


def main() -> int:
    args = set_arguments(__doc__, 6, VIDEOS)
    truth, failed = {}, False
    for name, spec in plan(args.files, args.seed).items():
        start = time.perf_counter()
        build(spec, args.videos, args.out / name)
        row = truth_row(spec)
        built = time.perf_counter() - start
        line = f"{name}: {row['frames_decoded']} frames, {len(row['cuts'])} cuts, {len(row['gradual'])} gradual, " \
               f"built in {built:.1f} s"
        if not args.no_verify:
            check = verify(spec, args.videos, args.out / name)
            row["verified"] = {"frames": check.frames, "min_psnr_db": round(check.min_psnr, 1),
                               "worst_error_steps": round(check.worst_error, 3), "worst_at": check.worst_at,
                               "ok": check.ok}
            line += f"; check {'ok' if check.ok else 'FAILED'}: min PSNR {check.min_psnr:.1f} dB, worst " \
                    f"{check.worst_error:.2f} steps at {check.worst_at} ({time.perf_counter() - start - built:.1f} s)"
            for failure in check.failures[:10]:
                line += f"\n    {failure}"
            failed |= not check.ok
        print(line, flush=True)
        truth[name] = row
    convention = json.loads((args.videos / "ground_truth.json").read_text())["convention"]
    doc = {
        "convention": convention + " Spliced set (bench/splice.py, support/splicing.py): ranges exact by construction:"
        " first = the first frame that differs from a pure frame of the outgoing shot, last = the last frame that"
        " differs from a pure frame of the incoming shot; a fade through black or white covers fade-out, hold and"
        " fade-in. gradual_kinds: the kind of each gradual range.",
        "generator": {"command": f"python bench/splice.py --out {args.out} --files {args.files} --seed {args.seed}",
                      "seed": args.seed},
        "files": truth,
    }
    (args.out / "ground_truth.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(truth)} files and {args.out / 'ground_truth.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
