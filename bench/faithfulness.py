"""The faithfulness check (video_caption/caption/faithful.py) on real replies labelled by reading them.

    python bench/faithfulness.py [--labels tests/fixtures/summary_faithfulness.jsonl] [--sweep]

Each labelled reply (faithful, unfaithful, or degenerate: caught by the other checks) is checked as
the summary step checks it, against its clip's frame captions (bench/data/shared_frame_captions.jsonl):
every check of caption/checks.py with the default settings.  Prints, per model and overall: the
precision and recall of ``unfaithful`` among the replies labelled faithful or unfaithful, the share of
faithful replies that pass every check (they reach train.json), and the replies judged otherwise than
their label.  ``--sweep`` also prints precision and recall over a grid of the two thresholds
(FAITHFUL_MAX_INVENTED, FAITHFUL_MAX_FILLER).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from video_caption.caption.checks import check_reply  # noqa: E402
from video_caption.caption.faithful import Faithfulness  # noqa: E402
from video_caption.caption.settings import PROMPTS  # noqa: E402
from video_caption.caption.summarize import instructions  # noqa: E402

LABELS = REPO / "tests" / "fixtures" / "summary_faithfulness.jsonl"
CAPTIONS = REPO / "bench" / "data" / "shared_frame_captions.jsonl"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judged(rows: list[dict], captions: dict[str, list[str]], settings: Faithfulness) -> list[tuple[dict, str]]:
    """(row, the reason the checks give it, or "ok")."""
    prompt = instructions((PROMPTS / "summary.txt").read_text(encoding="utf-8").strip())
    out = []
    for row in rows:
        frames = captions[row["video_path"]]
        problem = check_reply(row["reply"], prompt=prompt, sources=frames, finish_reason=row.get("finish_reason"),
                              language="en", describes=frames, faithfulness=settings)
        out.append((row, problem.reason if problem else "ok"))
    return out


def scores(results: list[tuple[dict, str]]) -> dict:
    """Among the replies labelled faithful or unfaithful: the precision of the reason ``unfaithful``
    (the share of the replies it flags that are labelled unfaithful), its recall (the share of those
    labelled unfaithful that it flags), the share of them kept out of train.json by any check (an
    earlier one, repetition or echo, may come first), and the share of faithful replies passing
    every check (they reach train.json)."""
    pairs = [(row["label"], found) for row, found in results if row["label"] in ("faithful", "unfaithful")]
    flagged = [label for label, found in pairs if found == "unfaithful"]
    untrue = [found for label, found in pairs if label == "unfaithful"]
    faithful = [found for label, found in pairs if label == "faithful"]
    hits = sum(label == "unfaithful" for label in flagged)
    return {"replies": len(pairs), "unfaithful": len(untrue), "flagged": len(flagged),
            "precision": hits / len(flagged) if flagged else 1.0, "recall": hits / len(untrue) if untrue else 1.0,
            "kept_out": sum(found != "ok" for found in untrue) / len(untrue) if untrue else 1.0,
            "faithful_kept": sum(found == "ok" for found in faithful) / len(faithful) if faithful else 1.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=Path, default=LABELS)
    p.add_argument("--sweep", action="store_true")
    args = p.parse_args()
    rows = load(args.labels)
    captions = {row["video_path"]: row["sampled_frame_caption"] for row in load(CAPTIONS)}
    results = judged(rows, captions, Faithfulness())
    print(f"{len(rows)} labelled replies: {dict(Counter(row['label'] for row in rows))}\n")
    print("| model | replies (faithful or unfaithful) | unfaithful | flagged unfaithful | precision | recall | "
          "unfaithful kept out (any check) | faithful reaching train.json |")
    print("|---|---|---|---|---|---|---|---|")
    for model in sorted({row["model"] for row in rows}) + ["all"]:
        s = scores([(r, f) for r, f in results if model in ("all", r["model"])])
        print(f"| {model} | {s['replies']} | {s['unfaithful']} | {s['flagged']} | {s['precision']:.2f} | "
              f"{s['recall']:.2f} | {s['kept_out']:.1%} | {s['faithful_kept']:.1%} |")
    print("\nJudged otherwise than labelled (degenerate-labelled replies the other checks catch left out):")
    for row, found in results:
        label = row["label"]
        if (label == "unfaithful") != (found == "unfaithful") and label != "degenerate" or \
                (label == "faithful" and found != "ok"):
            print(f"- {label} -> {found}: {row['model']} {Path(row['video_path']).name}: {row['reply'][:150]!r}")
    if args.sweep:
        print("\n| max invented | max filler | precision | recall | kept out | faithful kept |")
        print("|---|---|---|---|---|---|")
        for invented in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
            for filler in (0, 1):
                s = scores(judged(rows, captions, Faithfulness(invented, filler)))
                print(f"| {invented} | {filler} | {s['precision']:.2f} | {s['recall']:.2f} | {s['kept_out']:.1%} | "
                      f"{s['faithful_kept']:.1%} |")


if __name__ == "__main__":
    main()
