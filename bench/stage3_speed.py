"""Stage 3's LLM step against a local llama.cpp server: captions per second with 1 and with 8 requests
in flight, in one run, beside the embedded llama.cpp backend.

    python bench/stage3_speed.py [--clips 24] [--out bench/results]

The server is llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) with the
Gemma 3 270M GGUF, started once for all runs.  Each run is the real command
(``python -m video_caption.caption --steps summary``) on the same frame captions, greedy decoding
and the same token limit.  llama-cpp-python's server answers one request at a time, so a second pair
of runs measures the client alone: a scripted server that answers every request after a fixed 250 ms
(as a batching server under load would), with 1 and with 8 in flight.  Results go to OUT/stage3_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "support"))
from scripted_server import ScriptedServer  # noqa: E402
from stage2_speed import measured  # noqa: E402

from video_caption.caption.backends.llamacpp import default_gguf  # noqa: E402
from video_caption.caption.server import ManagedServer  # noqa: E402
from video_caption.manifest import read_rows  # noqa: E402

SUBJECTS = ["a brown dog", "a red car", "two children", "an old man", "a white cat", "a cyclist", "a sailboat",
            "a street market"]
PLACES = ["in a sunny park", "on a wet city street", "on a beach at sunset", "in a snowy forest"]


def inputs(folder: Path, n: int) -> None:
    rows, captions = [], []
    for i in range(n):
        key = f"clips/clip_{i:03d}.mp4"
        subject, place = SUBJECTS[i % len(SUBJECTS)], PLACES[i // len(SUBJECTS) % len(PLACES)]
        rows.append({"video_path": key})
        captions.append({"video_path": key, "model": "bench", "prompt": "", "sampled_frame_idx": [0, 50, 100],
                         "sampled_frame_caption": [f"{subject.capitalize()} is seen {place}.",
                                                   f"{subject.capitalize()} moves slowly to the left {place}.",
                                                   f"The camera follows {subject} {place}."]})
    folder.mkdir(parents=True)
    for name, data in (("train.jsonl", rows), ("frame_caption.jsonl", captions)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in data))


def run(work: Path, name: str, n: int, *backend: str) -> dict:
    out = work / name
    inputs(out, n)
    wall, peak, _ = measured([sys.executable, "-m", "video_caption.caption", "--output-folder", str(out),
                              "--steps", "summary", "--llm-max-tokens", "64", "--temperature", "0", *backend])
    rows = read_rows(out / "summary_caption.jsonl")
    words = sum(len(r["summary_caption"].split()) for r in rows)
    return {"wall_s": round(wall, 2), "captions": len(rows), "captions_per_s": round(len(rows) / wall, 3),
            "words": words, "client_peak_rss_mb": round(peak / 2**20),
            "captions_text": {r["video_path"]: r["summary_caption"] for r in rows}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="video_caption_bench3_"))
    gguf = str(default_gguf())
    results = {"machine": f"{platform.platform()}, {os.cpu_count()} cores", "clips": args.clips, "runs": {}}
    try:
        with ManagedServer("llamacpp", gguf, work / "server.log") as url:
            for concurrency in (1, 8):
                results["runs"][f"http_concurrency_{concurrency}"] = run(
                    work, f"http_{concurrency}", args.clips, "--llm-backend", "openai", "--llm-base-url", url,
                    "--concurrency", str(concurrency))
        results["runs"]["embedded_llamacpp"] = run(work, "embedded", args.clips, "--llm-backend", "llamacpp")
        texts = [r.pop("captions_text") for r in results["runs"].values()]
        results["same_captions_over_http_1_and_8"] = texts[0] == texts[1]
        with ScriptedServer(lambda body, attempt: (200, "A dog runs after a ball in a park.", 0.25)) as fixed:
            for concurrency in (1, 8):
                result = run(work, f"fixed_{concurrency}", 96, "--llm-backend", "openai", "--llm-base-url",
                             fixed.url, "--concurrency", str(concurrency))
                result.pop("captions_text")
                results["runs"][f"fixed_250ms_server_concurrency_{concurrency}"] = result
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "stage3_speed.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
