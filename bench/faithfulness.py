"""The faithfulness check (video_caption/caption/faithful.py) on real replies labelled by reading them.

    python bench/faithfulness.py [--labels tests/fixtures/summary_faithfulness.jsonl] [--sweep] [--stage3]

Each labelled reply (faithful, unfaithful, or degenerate: caught by the other checks) is checked as
the summary step checks it, against its clip's frame captions (bench/data/shared_frame_captions.jsonl):
every check of caption/checks.py with the default settings.  Prints, per model and overall, among the
replies labelled faithful or unfaithful: the precision and recall of ``unfaithful`` as the checks give
it (an earlier check, repetition or echo, may come first) and of the faithfulness check alone, the
share of unfaithful replies kept out by any check, the share of faithful replies that pass every check
(they reach train.json), and the replies judged otherwise than their label.  ``--sweep`` also prints
them over a grid of the thresholds (FAITHFUL_MAX_INVENTED, FAITHFUL_MIN_SUPPORT, FAITHFUL_SIMILAR).
``--stage3`` runs stage 3 itself, offline (summary and train, default settings: SmolLM2-135M, seed 0),
on the clips' frame captions and prints the share of clips reaching train.json, those whose caption
misses a subject of the clip (bench/data's labels, ``subjects``), and the reasons the others were kept out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from offline_llms import mentions  # noqa: E402  (bench/, beside this script)

from video_caption.caption.checks import check_reply  # noqa: E402
from video_caption.caption.faithful import Faithfulness, unfaithful  # noqa: E402
from video_caption.caption.settings import PROMPTS  # noqa: E402
from video_caption.caption.summarize import instructions  # noqa: E402

LABELS = REPO / "tests" / "fixtures" / "summary_faithfulness.jsonl"
CAPTIONS = REPO / "bench" / "data" / "shared_frame_captions.jsonl"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judged(rows: list[dict], captions: dict[str, list[str]], settings: Faithfulness) -> list[tuple[dict, str, bool]]:
    """(row, the reason the checks give it, or "ok"; whether the faithfulness check alone finds it untrue)."""
    prompt = instructions((PROMPTS / "summary.txt").read_text(encoding="utf-8").strip())
    out = []
    for row in rows:
        frames = captions[row["video_path"]]
        problem = check_reply(row["reply"], prompt=prompt, sources=frames, finish_reason=row.get("finish_reason"),
                              language="en", describes=frames, faithfulness=settings)
        out.append((row, problem.reason if problem else "ok", unfaithful(row["reply"], frames, settings) is not None))
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def scores(results: list[tuple[dict, str, bool]]) -> dict:
    """Among the replies labelled faithful or unfaithful: the precision of the reason ``unfaithful``
    (the share of the replies it flags that are labelled unfaithful), its recall (the share of those
    labelled unfaithful that it flags), the same for the faithfulness check alone (``alone_*``), the
    share of them kept out of train.json by any check (an earlier one, repetition or echo, may come
    first), and the share of faithful replies passing every check (they reach train.json)."""
    labelled = [(row["label"], found, alone) for row, found, alone in results if row["label"] != "degenerate"]
    alone = [label for label, _, flagged in labelled if flagged]
    pairs = [(label, found) for label, found, _ in labelled]
    flagged = [label for label, found in pairs if found == "unfaithful"]
    untrue = [found for label, found in pairs if label == "unfaithful"]
    faithful = [found for label, found in pairs if label == "faithful"]
    hits = sum(label == "unfaithful" for label in flagged)
    return {"replies": len(pairs), "unfaithful": len(untrue), "flagged": len(flagged),
            "precision": hits / len(flagged) if flagged else 1.0, "recall": hits / len(untrue) if untrue else 1.0,
            "kept_out": sum(found != "ok" for found in untrue) / len(untrue) if untrue else 1.0,
            "faithful_kept": sum(found == "ok" for found in faithful) / len(faithful) if faithful else 1.0,
            "alone_precision": _share(alone.count("unfaithful"), len(alone)),
            "alone_recall": _share(alone.count("unfaithful"), len(untrue))}


def stage3(clips: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        rows = [{"video_path": c["video_path"], "source_path": c["source_path"], "clip_frames": c["clip_frames"]}
                for c in clips]
        (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (out / "frame_caption.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
        subprocess.run([sys.executable, "-m", "video_caption.caption", "--output-folder", str(out),
                        "--steps", "summary,train", "--seed", "0"], check=True, cwd=REPO)
        kept = {r["file_path"]: r["text"] for r in json.loads((out / "train.json").read_text())}
        reasons = Counter(r["degenerate"]["reason"] for r in load(out / "summary_caption.jsonl") if r.get("degenerate"))
    subjects = {c["video_path"]: c["subjects"] for c in clips}
    missing = [path for path, text in kept.items() if not all(mentions(text, s) for s in subjects[path])]
    print(f"\nstage 3 offline: {len(kept)} of {len(clips)} clips reach train.json ({len(kept) / len(clips):.0%}); "
          f"{len(missing)} miss a subject; kept out: {dict(reasons)}")
    for path, text in kept.items():
        print(f"- {Path(path).name}: {text[:160]!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=Path, default=LABELS)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--stage3", action="store_true")
    args = p.parse_args()
    rows = load(args.labels)
    clips = load(CAPTIONS)
    captions = {row["video_path"]: row["sampled_frame_caption"] for row in clips}
    results = judged(rows, captions, Faithfulness())
    print(f"{len(rows)} labelled replies: {dict(Counter(row['label'] for row in rows))}\n")
    print("| model | replies (faithful or unfaithful) | unfaithful | flagged unfaithful | precision | recall | "
          "check alone: precision | recall | unfaithful kept out (any check) | faithful reaching train.json |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in sorted({row["model"] for row in rows}) + ["all"]:
        s = scores([result for result in results if model in ("all", result[0]["model"])])
        print(f"| {model} | {s['replies']} | {s['unfaithful']} | {s['flagged']} | {s['precision']:.2f} | "
              f"{s['recall']:.2f} | {s['alone_precision']:.2f} | {s['alone_recall']:.2f} | {s['kept_out']:.1%} | "
              f"{s['faithful_kept']:.1%} |")
    print("\nJudged otherwise than labelled (degenerate-labelled replies the other checks catch left out):")
    for row, found, _ in results:
        label = row["label"]
        if (label == "unfaithful") != (found == "unfaithful") and label != "degenerate" or \
                (label == "faithful" and found != "ok"):
            print(f"- {label} -> {found}: {row['model']} {Path(row['video_path']).name}: {row['reply'][:150]!r}")
    if args.sweep:
        print("\n| max invented | min support | similar | alone: precision | recall | kept out | faithful kept |")
        print("|---|---|---|---|---|---|---|")
        grid = itertools.product((0.25, 0.3, 0.35), (0.5, 0.56, 0.64), (0.5, 0.55, 0.6))
        for invented, support, similar in grid:
            s = scores(judged(rows, captions, Faithfulness(invented, 1, similar, support)))
            print(f"| {invented} | {support} | {similar} | {s['alone_precision']:.2f} | {s['alone_recall']:.2f} | "
                  f"{s['kept_out']:.1%} | {s['faithful_kept']:.1%} |")
    if args.stage3:
        stage3(clips)


if __name__ == "__main__":
    main()
