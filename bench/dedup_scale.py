"""Dedup grouping at scale: 1,000,000 synthetic clip signatures grouped as stage 2 groups them.

    python bench/dedup_scale.py [--clips 1000000] [--rows 100000] [--out bench/results/dedup_scale.json]

Signatures: five frame hashes per clip, each a random unit vector (the hardest case for the index:
no structure to exploit), quantized to int8 as the manifest keeps them.  One original in ten gets one
to three planted copies whose frames sit at cosine 0.93-0.99 from the original's (re-encodes, crops
and letterboxes measure 0.94-1.0 on real footage, bench/dedup_quality.py).
Timed, each in this fresh process: ``group_duplicates`` on the --clips signatures (the LSH index,
verification, components, the kept clip by aesthetic score, duration and size), peak memory being
the process's maximum RSS; then ``DedupScorer.group`` on --rows manifest rows (signatures as base64
strings, as the step reads them), the whole step's grouping pass.  Recall: planted copies grouped
with their original; wrong: clips grouped under a clip they were not planted with.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from video_caption.score.dedup import FRAMES, DedupScorer, encode_signature, group_duplicates  # noqa: E402


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def planted(clips: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frame hashes, int8 as in the manifest, (clips, FRAMES, 63), and each clip's original."""
    rng = np.random.default_rng(seed)
    originals = clips * 10 // 13  # one original in ten gets 1-3 copies: about 3 copies per 13 clips
    copied = rng.choice(originals, originals // 10, replace=False)
    group = np.r_[np.arange(originals), np.repeat(copied, rng.integers(1, 4, size=len(copied)))][:clips]
    group = np.r_[group, np.arange(len(group), clips)]
    hashes = np.empty((clips, FRAMES, 63), dtype=np.int8)
    for start in range(0, clips, 1 << 16):  # in chunks: the float form of a million clips is 1.3 GB
        rows = np.arange(start, min(clips, start + (1 << 16)))
        h = unit(np.random.default_rng([seed, start]).standard_normal((len(rows), FRAMES, 63), dtype=np.float32))
        hashes[rows] = np.round(h * 127)
    copy = np.flatnonzero(group != np.arange(clips))
    base = unit(hashes[group[copy]].astype(np.float32))
    noise = unit(rng.standard_normal(base.shape, dtype=np.float32))
    noise = unit(noise - np.sum(noise * base, axis=-1, keepdims=True) * base)
    cosine = rng.uniform(0.93, 0.99, size=(len(copy), 1, 1)).astype(np.float32)
    hashes[copy] = np.round((cosine * base + np.sqrt(1 - cosine ** 2) * noise) * 127)
    return hashes, group


def signatures(hashes: np.ndarray) -> np.ndarray:
    """The step's decoded form: frames scaled to unit length, concatenated, scaled to unit length."""
    out = hashes.astype(np.float32)
    out /= np.linalg.norm(out, axis=2, keepdims=True) * np.sqrt(FRAMES)
    return out.reshape(len(hashes), -1)


def quality(kept: np.ndarray, group: np.ndarray) -> dict:
    copies = group != np.arange(len(group))
    found = kept[copies] == kept[group[copies]]
    return {"planted_copies": int(copies.sum()), "recall": round(float(np.mean(found)), 5),
            "clips_grouped_wrongly": int(np.sum(group[kept] != group))}


def kept_index(found: list[dict]) -> np.ndarray:
    index = {r["video_path"]: i for i, r in enumerate(found)}
    return np.array([index[r["dup_of"]] if r["dup_of"] else i for i, r in enumerate(found)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--out", default=str(REPO / "bench/results/dedup_scale.json"))
    args = p.parse_args()
    hashes, group = planted(args.clips)
    keys = [f"clips/{i:07d}.mp4" for i in range(args.clips)]
    rng = np.random.default_rng(1)
    rank = np.argsort(np.argsort(-rng.uniform(3, 7, args.clips)))  # an aesthetic order
    sig = signatures(hashes)
    before = rss_gb()
    start = time.perf_counter()
    found = group_duplicates(keys, sig, None, rank)
    elapsed, peak = time.perf_counter() - start, rss_gb()
    result = {"clips": args.clips, "group_s": round(elapsed, 1), "peak_rss_gb": round(peak, 2),
              "rss_before_gb": round(before, 2), **quality(kept_index(found), group)}
    print(json.dumps(result), flush=True)
    del found, sig
    hashes, group = planted(args.rows, seed=2)
    rows = [{"video_path": keys[i], "dedup_signature": encode_signature(hashes[i].astype(np.float32) / 127),
             "duration": 5.0, "width": 1280, "height": 720, "aesthetic_score": float(-rank[i])}
            for i in range(args.rows)]
    start = time.perf_counter()
    found = DedupScorer().group(rows)
    result["rows"] = {"clips": args.rows, "group_s": round(time.perf_counter() - start, 1),
                      **quality(kept_index(found), group)}
    result.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": str(date.today()),
                   "command": f"python bench/dedup_scale.py --clips {args.clips} --rows {args.rows}"})
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
