"""Near-duplicate clips across the whole dataset: one clip kept of every group showing the same footage.

Signatures, per clip (every rank, resumable, ``dedup_signatures.jsonl``): ``FRAMES`` moments at fixed
fractions of the clip, so a re-cut of the same time range, at another frame rate too, samples the
same moments.  At each, the frames within ``WINDOW`` seconds have their black borders trimmed
(letterbox, pillarbox), are shrunk to 32x32 gray thumbnails and averaged (a re-cut a few frames off
then sees the same picture, even with fast motion); the mean goes through a 2-D DCT, and its 8x8
lowest frequencies without the DC term are a perceptual hash (pHash) before binarisation, kept as 63
numbers so that the distance grows smoothly with a crop or a re-encode instead of in whole bits.  A
clip's signature is its moments' unit vectors, concatenated and scaled to unit length: the cosine of
two signatures is the mean of their moments' cosines.

Grouping, over the survivors of every per-clip gate (one rank, ``group_duplicates``, pure): candidate
pairs come from an LSH index over SimHash bits of the signatures (``neighbours``: sorted band keys,
never an all-pairs loop; faiss's binary hash indexes took minutes per 100,000 clips on 2 cores, its
IVF indexes lose copies on unstructured signatures, see docs/benchmarks.md).  Two clips are copies
when the hash cosine of every moment is at least ``phash_min``: a copy matches throughout, while a
later part of the same shot or another shot of the scene drifts away at some moment.  When the
aesthetic scorer ran, its CLIP image embeddings (in ``aesthetic_score.jsonl``, no second CLIP pass)
must agree too (``clip_min``, method ``phash+clip``): a veto on hash look-alikes of different
pictures.  Groups are the connected components of those pairs (transitive); each keeps the clip with
the highest aesthetic score, then the longest, then the largest, then the first by path.

Thresholds were set on bench/dedup_quality.py's set of variants and hard negatives built from the
shared videos (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from video_caption.clip import decode_embedding
from video_caption.gate import Gate
from video_caption.loader import FramePlan, Item
from video_caption.manifest import KEY, media_type
from video_caption.score.base import Scorer
from video_caption.score.settings import GATES
from video_caption.settings import SWITCH, Setting, number
from video_caption.steps import Field, StepSpec

FRAMES = 5
PHASH_MIN = 0.82  # every moment; bench/dedup_quality.py: copies and negatives split anywhere in 0.78-0.86
CLIP_MIN = 0.8  # a veto on hash look-alikes of different pictures, low enough that a letterbox passes
THUMB, LOW = 32, 8  # thumbnail side; side of the block of lowest DCT frequencies kept
WINDOW = 0.1  # seconds: each sample is the mean of the frames this far either side of its moment
BORDER_LEVEL = 40  # a row or column no brighter than this (0-255) is part of a black border
HASH_BITS, BANDS, BAND_BITS = 256, 100, 20  # the LSH index (see neighbours)
BUCKET_PAIRS = 8  # in a bucket, each row is compared with the next 7 (all pairs of a small bucket)
CHUNK = 1 << 16  # rows or pairs per matrix product, to bound memory

# The groups (one row per clip), and each clip's signature they are made from.
DUPLICATES, SIGNATURES = "duplicates.jsonl", "dedup_signatures.jsonl"


def trim_borders(gray: np.ndarray) -> np.ndarray:
    """The frame without the black bars around it (letterbox, pillarbox); the whole frame when it is
    all dark or the bars would leave less than a quarter of it."""
    rows = np.flatnonzero(gray.max(axis=1) > BORDER_LEVEL)
    cols = np.flatnonzero(gray.max(axis=0) > BORDER_LEVEL)
    if not len(rows) or not len(cols):
        return gray
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (bottom - top) * (right - left) < gray.size / 4:
        return gray
    return gray[top:bottom, left:right]


def frame_hash(*grays: np.ndarray) -> np.ndarray:
    """The 63 low DCT frequencies of the frames' mean thumbnail as a unit vector (zeros when flat)."""
    import cv2

    thumb = np.mean([cv2.resize(trim_borders(g), (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
                     for g in grays], axis=0)
    low = cv2.dct(thumb)[:LOW, :LOW].ravel()[1:]
    norm = float(np.linalg.norm(low))
    return low / norm if norm > 1e-3 else np.zeros_like(low)


def encode_signature(hashes: np.ndarray) -> str:
    """Frame hashes (frames x 63 unit vectors) as base64 int8, the form kept in the manifest."""
    return base64.b64encode(np.round(hashes * 127).astype(np.int8).tobytes()).decode()


def decode_signatures(texts: list[str], frames: int = FRAMES) -> np.ndarray:
    """Clips' signatures: each clip's frame hashes scaled back to unit length, concatenated and
    scaled to unit length (a flat frame stays zero); (clips, frames * 63) float32."""
    width = len(base64.b64decode(texts[0])) if texts else frames * (LOW * LOW - 1)
    hashes = np.empty((len(texts), width), dtype=np.float32)
    for row, text in enumerate(texts):
        hashes[row] = np.frombuffer(base64.b64decode(text), dtype=np.int8)
    hashes = hashes.reshape(len(texts), frames, -1)
    norms = np.linalg.norm(hashes, axis=2, keepdims=True)
    np.divide(hashes, norms * math.sqrt(frames), out=hashes, where=norms > 0)
    return hashes.reshape(len(texts), -1)


@dataclass(frozen=True)
class DedupFrames(FramePlan):
    count: int = FRAMES
    fmt = "gray"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        """``count`` windows of equal length, centred at fractions of the clip (the same moments at any
        frame rate), each ``WINDOW`` seconds either side (clamped inside the clip)."""
        half = round(WINDOW * fps)
        centres = [int((i + 0.5) * num_frames / self.count) for i in range(self.count)]
        return [min(num_frames - 1, max(0, c + d)) for c in centres for d in range(-half, half + 1)]

    def prepare(self, frames: list[np.ndarray]) -> np.ndarray:
        length = len(frames) // self.count
        return np.stack([frame_hash(*frames[i * length:(i + 1) * length]) for i in range(self.count)])


def simhash(vectors: np.ndarray, bits: int = HASH_BITS, seed: int = 0) -> np.ndarray:
    """Random-hyperplane hash (SimHash): bit k is the side of hyperplane k a vector lies on, so two
    vectors at angle t differ in a share t/pi of the bits.  (n, bits) booleans; fixed planes."""
    planes = np.random.default_rng(seed).standard_normal((vectors.shape[1], bits)).astype(np.float32)
    return np.concatenate([vectors[start:start + CHUNK] @ planes > 0 for start in range(0, len(vectors), CHUNK)])


def neighbours(vectors: np.ndarray, threshold: float, tiebreak: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j) of unit rows whose cosine may reach ``threshold``, from an LSH index:
    ``BANDS`` tables, each keyed by ``BAND_BITS`` of the rows' SimHash bits, sorted; rows sharing a
    key are candidates: every pair of a small bucket, and in a big one (a thousand copies of one
    clip) each row with the next few, in the order of ``tiebreak`` (distinct integers, so the pairs
    do not depend on the rows' order); they are kept when their SimHash Hamming distance is within
    what ``threshold`` allows.  A pair at cosine 0.9 shares some table with probability 0.99; a
    random pair, one table in 10,000."""
    n = len(vectors)
    tiebreak = np.arange(n, dtype=np.uint64) if tiebreak is None else tiebreak.astype(np.uint64)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bits = simhash(vectors)
    codes = np.packbits(bits, axis=1).view(np.uint64)
    expected = HASH_BITS * math.acos(max(-1.0, min(1.0, threshold))) / math.pi
    share = expected / HASH_BITS
    radius = expected + 4 * math.sqrt(HASH_BITS * share * (1 - share))  # 4 sigma: the candidates stay
    columns = np.ascontiguousarray(bits.T)  # a band's bits are then whole rows, fast to gather
    found = []
    for band in np.random.default_rng(1).integers(0, HASH_BITS, size=(BANDS, BAND_BITS)):
        packed = np.packbits(columns[band], axis=0, bitorder="little")  # (3, n): a 20-bit key per row
        keys = tiebreak.copy()  # the key in the high bits, the tie-break in the low 32
        for byte, row in enumerate(packed):
            keys |= row.astype(np.uint64) << np.uint64(32 + 8 * byte)
        order = np.argsort(keys)
        sorted_keys = keys[order] >> np.uint64(32)
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, n])
        ends = np.repeat(starts + sizes, sizes)  # for each sorted position, the end of its bucket
        shared = np.flatnonzero(ends - np.arange(n) > 1)  # positions with a later bucket member
        for step in range(1, min(BUCKET_PAIRS, int(sizes.max()))):
            shared = shared[shared + step < ends[shared]]
            a, b = order[shared], order[shared + step]
            a, b = np.minimum(a, b), np.maximum(a, b)
            close = np.bitwise_count(codes[a] ^ codes[b]).sum(axis=1) <= radius
            found.append(a[close].astype(np.int64) * n + b[close])
    pairs = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
    return pairs // n, pairs % n


def moment_cosines(signatures: np.ndarray, i: np.ndarray, j: np.ndarray, moments: int) -> np.ndarray:
    """For each pair, the lowest cosine over the clips' moments: a copy matches at every moment, a
    later part of the same shot or another shot of the scene not at all of them."""
    out = np.empty(len(i), dtype=np.float32)
    for start in range(0, len(i), CHUNK):
        a = signatures[i[start:start + CHUNK]].reshape(-1, moments, signatures.shape[1] // moments)
        b = signatures[j[start:start + CHUNK]].reshape(a.shape)
        out[start:start + len(a)] = np.einsum("pmk,pmk->pm", a, b).min(axis=1) * moments
    return out


def group_duplicates(keys: list[str], signatures: np.ndarray, embeddings: np.ndarray | None,
                     preference: np.ndarray, phash_min: float = PHASH_MIN, clip_min: float = CLIP_MIN,
                     moments: int = FRAMES) -> list[dict]:
    """One row per clip: ``dup_of`` (the kept clip of its group, None for a kept one), ``similarity``
    (the hash similarity to the kept clip), ``method`` (``phash``, or ``phash+clip`` when CLIP
    embeddings confirmed its links), ``duplicate`` and ``group_size``.

    Two clips are copies when every moment's hash cosine is at least ``phash_min`` and, when both
    have a CLIP embedding, those are at least ``clip_min`` alike.  ``signatures``: unit rows of
    ``moments`` equal parts; ``embeddings``: unit CLIP rows, zero for a clip without one (or None);
    ``preference``: a rank per clip, the lowest kept in its group.  The result depends only on the
    clips, not on their order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(keys)
    by_path = np.empty(n, dtype=np.int64)
    by_path[np.argsort(np.array(keys, dtype=object), kind="stable")] = np.arange(n)
    sig = np.asarray(signatures, dtype=np.float32)
    i, j = neighbours(sig, phash_min, by_path)  # the mean over moments is at least their lowest
    linked = moment_cosines(sig, i, j, moments) >= phash_min
    confirmed = np.zeros(len(i), dtype=bool)
    if embeddings is not None:
        emb = np.asarray(embeddings, dtype=np.float32)
        both = (np.abs(emb[i]).sum(axis=1) > 0) & (np.abs(emb[j]).sum(axis=1) > 0)
        alike = np.einsum("pk,pk->p", emb[i], emb[j]) >= clip_min
        linked &= ~both | alike
        confirmed = both & alike
    i, j, confirmed = i[linked], j[linked], confirmed[linked]
    _, label = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    ranked = np.lexsort((by_path, np.asarray(preference), label))  # by group, the most preferred first
    first = ranked[np.r_[True, label[ranked][1:] != label[ranked][:-1]]] if n else ranked
    best = np.empty(label.max() + 1 if n else 0, dtype=np.int64)
    best[label[first]] = first
    size = np.bincount(label) if n else np.array([], dtype=int)
    with_clip = np.zeros(n, dtype=bool)
    with_clip[i[confirmed]] = with_clip[j[confirmed]] = True
    dups = np.flatnonzero(best[label] != np.arange(n))
    similarity = dict(zip(dups.tolist(), moment_cosines(sig, dups, best[label[dups]], moments).tolist(),
                          strict=True))
    rows = []
    for node in range(n):
        kept = best[label[node]]
        dup = kept != node
        rows.append({
            KEY: keys[node], "dup_of": keys[kept] if dup else None,
            "similarity": round(similarity[node], 4) if dup else None,
            "method": ("phash+clip" if with_clip[node] else "phash") if dup else None,
            "duplicate": bool(dup), "group_size": int(size[label[node]])})
    return rows


def preference(rows: list[dict]) -> np.ndarray:
    """Each clip's rank in its group: highest aesthetic score, then longest, then largest (0 first).
    Clips alike in all three share a rank (the path decides, not the rows' order), and scores equal
    to 3 decimals tie: the same picture scored in batches of other sizes differs in its last float
    bits, and that must not pick the copy."""
    keys = np.empty(len(rows), dtype=[("aesthetic", "f8"), ("duration", "f8"), ("area", "f8")])
    keys["aesthetic"] = [-round(r["aesthetic_score"], 3) if r.get("aesthetic_score") is not None else np.inf
                         for r in rows]
    keys["duration"] = [-(r.get("duration") or 0.0) for r in rows]
    keys["area"] = [-(r.get("width") or 0) * (r.get("height") or 0) for r in rows]
    return np.unique(keys, return_inverse=True)[1].astype(np.int64).ravel()


class DedupScorer(Scorer):
    """Per clip, its signature (any rank); over the dataset, its group (``group``, one rank)."""

    name = "dedup"
    key = "duplicate"
    output = SIGNATURES
    group_output = DUPLICATES

    def __init__(self, phash_min: float = PHASH_MIN, clip_min: float = CLIP_MIN):
        self.frames = DedupFrames()
        self.phash_min, self.clip_min = phash_min, clip_min

    def settings(self) -> dict:
        return {"hash": f"dct{LOW}x{LOW}-of-{THUMB}", "frames": self.frames.count, "window": WINDOW,
                "border": BORDER_LEVEL}

    def process(self, items: list[Item]) -> list[dict]:
        return [{"dedup_signature": encode_signature(item.data), "dedup_frame_idx": item.frame_indices}
                for item in items]

    def group(self, rows: list[dict]) -> list[dict]:
        """Rows of every clip with its signature (and the scores of earlier steps): duplicates.jsonl.
        Images and video clips are grouped apart: a still is not a copy of a clip that holds still."""
        by_type: dict[str, list[dict]] = {}
        for row in rows:
            by_type.setdefault(media_type(row), []).append(row)
        found = {row[KEY]: row for part in by_type.values() for row in self._group(part)}
        return [found[row[KEY]] for row in rows]

    def _group(self, rows: list[dict]) -> list[dict]:
        signatures = decode_signatures([r["dedup_signature"] for r in rows], self.frames.count)
        embeddings = None
        vectors = [decode_embedding(r["aesthetic_embedding"]) if r.get("aesthetic_embedding") else None for r in rows]
        if any(v is not None for v in vectors):
            width = next(len(v) for v in vectors if v is not None)
            embeddings = np.stack([np.zeros(width, np.float32) if v is None else v for v in vectors])
        found = group_duplicates([r[KEY] for r in rows], signatures, embeddings, preference(rows),
                                 self.phash_min, self.clip_min, self.frames.count)
        return [{**row, "dedup_settings": {"phash_min": self.phash_min, "clip_min": self.clip_min}}
                for row in found]


STEP = StepSpec(
    "dedup", 2,
    # Off the report's cards: a duplicate's card names its kept clip and their similarity.
    fields=(Field("duplicate", "whether the clip copies another one kept", label=True, card=False, type="bool"),
            Field("similarity", "the lowest perceptual-hash cosine with the clip it copies, over the moments",
                  card=False),
            Field("dup_of", "the kept clip it copies (its video_path)", text=True, card=False)),
    settings=(
        Setting("KEEP_DUPLICATES", SWITCH, False, "dedup only marks duplicates (duplicates.jsonl) instead of "
                "dropping them", (2,), GATES, gate="dedup"),
        Setting("DEDUP_THRESHOLD", number(minimum=None), PHASH_MIN, "perceptual-hash cosine, at every sampled "
                "moment, from which two clips show the same footage", (2,), "dedup"),
        Setting("DEDUP_CLIP_THRESHOLD", number(minimum=None), CLIP_MIN, "when the aesthetic scorer ran, the CLIP "
                "cosine two copies must also reach", (2,), "dedup"),
    ),
    gates=lambda a: [] if a.keep_duplicates else [Gate("duplicate", values=(False,))],
    make=lambda a, device, order: DedupScorer(phash_min=a.dedup_threshold, clip_min=a.dedup_clip_threshold),
    outputs=(DUPLICATES, SIGNATURES),
    last=True,
)
