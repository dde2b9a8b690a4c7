"""The HTML report, opened in a real headless browser (Debian's chromium through Playwright) from a
file URL: the report that run_pipeline.sh built over the mixed folder of videos and images (the
pipeline run the image tests share).  A screenshot of it is saved by every run, in
$VIDEO_CAPTION_TEST_ARTIFACTS (default .test-artifacts/ in the repository)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from browser import open_page
from conftest import REPO, run_module
from score_helpers import write_manifest

from video_caption.manifest import read_rows
from video_caption.report.collect import clip_table, funnel

ARTIFACTS = Path(os.environ.get("VIDEO_CAPTION_TEST_ARTIFACTS", REPO / ".test-artifacts"))


def value_at(summary: dict, path: str):
    for part in path.split("."):
        summary = summary[part]
    return summary


def test_the_funnel_takes_every_number_from_summary_json():
    summary = {"stages": {"cut": {"sources": 4, "sources_failed": 1, "clips": 9},
                          "score": {"gates": {"metadata": {"reached": 9, "passed": 8, "rejected": 1, "unscored": 0},
                                              "text": {"reached": 8, "passed": 5, "rejected": 2, "unscored": 1}},
                                    "train_clips": 5}}}
    rows = funnel(summary)
    assert [r["label"] for r in rows] == ["sources", "clips", "gate: metadata", "gate: text", "train.jsonl"]
    assert all(value == value_at(summary, path) for r in rows for _, path, value in r["cells"])
    assert [name for name, _, _ in rows[3]["cells"]] == ["reached", "passed", "rejected", "unscored"]


def test_each_clip_gets_its_fate_from_stage_2_and_stage_3(tmp_path):
    write_manifest(tmp_path / "meta_clips.jsonl", [{"video_path": f"c{i}.mp4", "type": "video"} for i in range(4)])
    write_manifest(tmp_path / "gate_decisions.jsonl", [
        {"video_path": "c0.mp4", "outcome": "rejected", "step": "text", "gate": "text_score <= 0.02", "value": 0.1},
        *({"video_path": f"c{i}.mp4", "outcome": "passed", "step": None, "gate": None, "value": None}
          for i in (1, 2))])
    write_manifest(tmp_path / "match_score.jsonl", [{"video_path": "c1.mp4", "match_score": 25.0},
                                                    {"video_path": "c2.mp4", "match_score": 12.5}])
    (tmp_path / "train.json").write_text(json.dumps([{"file_path": "c1.mp4", "text": "A cat.", "type": "video"}]))
    (tmp_path / "summary.json").write_text(json.dumps({"stages": {"caption": {"gates": {"match": {
        "reached": 2, "passed": 1, "bounds": [{"key": "match_score", "min": 20, "max": None}]}}}}}))
    fates = {r["video_path"]: (r["status"], r["reason"], r["gate_value"]) for r in clip_table(tmp_path)}
    assert fates == {"c0.mp4": ("rejected", "text: text_score <= 0.02", 0.1), "c1.mp4": ("train", None, None),
                     "c2.mp4": ("passed", "match: 20 <= match_score", 12.5), "c3.mp4": ("not scored", None, None)}


def cards(page) -> list[str]:
    return page.eval_on_selector_all("#grid .card", "nodes => nodes.map(n => n.dataset.key)")


def test_the_pipeline_report_opens_offline_and_shows_what_each_gate_did(mixed_run):
    out, proc = mixed_run
    index = out / "report" / "index.html"
    assert proc.stderr.strip().splitlines()[-1].startswith(f"report: {index.resolve()} ")
    page_text = index.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page_text), "the page must not need the network"
    summary = json.loads((out / "summary.json").read_text())
    fates = read_rows(out / "gate_decisions.jsonl")
    entries = json.loads((out / "train.json").read_text())

    with open_page(index) as (page, errors):
        page.wait_for_selector("body[data-ready='1']")
        shown = page.eval_on_selector_all("[data-key]", "nodes => nodes.filter(n => n.tagName === 'B')"
                                                        ".map(n => [n.dataset.key, n.textContent])")
        assert {path for path, _ in shown} >= {"stages.cut.sources", "stages.cut.clips", "stages.score.train_clips",
                                               "stages.caption.train_json", "stages.score.gates.dedup.rejected"}
        assert all(text == str(value_at(summary, path)) for path, text in shown), shown
        page.select_option("#page-size", "1000")
        shown_clips = cards(page)
        assert sorted(shown_clips) == sorted(r["video_path"] for r in read_rows(out / "meta_clips.jsonl"))

        # Each gate's filter shows exactly the clips that gate rejected.
        gates = page.eval_on_selector_all("#gate option", "nodes => nodes.map(n => n.value).filter(Boolean)")
        assert set(gates) == {"text: text_score <= 0.02", "dedup: duplicate in (false)"}
        for gate in gates:
            page.select_option("#gate", gate)
            step, described = gate.split(": ", 1)
            dropped = {f["video_path"] for f in fates if (f["step"], f["gate"], f["outcome"]) ==
                       (step, described, "rejected")}
            assert set(cards(page)) == dropped and page.inner_text("#results-count") == f"{len(dropped)} clips"
        page.select_option("#gate", "")

        page.select_option("#sort", "text_score")
        assert cards(page)[0].endswith("bars.png"), "the test card has the most text"
        copy = page.locator(".card[data-key$='bikes_copy.png']")
        assert "duplicate of clips/photos/bikes.jpg/bikes.jpg" in copy.inner_text() and copy.locator(".dup img").count()

        # Every word of the search, in any order, in a clip's caption or path.
        words = entries[0]["text"].lower().split()[:4]
        matching = {r["video_path"] for r in clip_table(out)
                    if all(w in f"{r['caption'] or ''} {r['video_path']}".lower() for w in words)}
        page.fill("#search", " ".join(words))
        page.wait_for_function("expected => document.querySelector('#results-count').textContent === expected",
                               arg=f"{len(matching)} clips")
        assert entries[0]["file_path"] in matching and len(matching) < len(shown_clips)
        assert set(cards(page)) == matching

        assert page.locator("#errors-body tr").count() == len(read_rows(out / "errors.jsonl"))
        page.fill("#search", "")
        page.wait_for_timeout(400)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1300, "height": 900})
        page.screenshot(path=ARTIFACTS / "report-demo.png", full_page=True)
        assert errors == []


def test_a_rebuild_reuses_every_thumbnail(mixed_run):
    out, _ = mixed_run
    strips = {p.name: p.stat().st_mtime_ns for p in (out / "report" / "thumbs").glob("*.jpg")}
    proc = run_module("video_caption.report", "--output-folder", out)
    assert f"{len(strips)} reused, 0 to make" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "report" / "thumbs").glob("*.jpg")} == strips
    assert len(strips) == len(read_rows(out / "meta_clips.jsonl"))
