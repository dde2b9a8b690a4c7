"""The HTML report, opened in a real headless browser (Debian's chromium through Playwright) from a
file URL: the report that run_pipeline.sh built over the mixed folder of videos and images (the
pipeline run the image tests share).  A screenshot of it is saved by every run, in
$VIDEO_CAPTION_TEST_ARTIFACTS (default .test-artifacts/ in the repository)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from browser import open_page
from conftest import REPO, run_module
from score_helpers import write_manifest

from video_caption.manifest import read_rows
from video_caption.report.collect import clip_table, funnel, numbers
from video_caption.report.plots import bins, histogram

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
    write_manifest(tmp_path / "video_caption.jsonl", [{"video_path": "c2.mp4", "video_caption": "A dog."}])
    (tmp_path / "train.json").write_text(json.dumps([{"file_path": "c1.mp4", "text": "A cat.", "type": "video"}]))
    write_manifest(tmp_path / "caption_decisions.jsonl", [
        {"video_path": "c1.mp4", "outcome": "passed", "step": None, "gate": None, "value": None},
        {"video_path": "c2.mp4", "outcome": "rejected", "step": "match", "gate": "20 <= match_score", "value": 12.5}])
    fates = {r["video_path"]: (r["status"], r["reason"], r["gate_value"]) for r in clip_table(tmp_path)}
    assert fates == {"c0.mp4": ("rejected", "text: text_score <= 0.02", 0.1), "c1.mp4": ("train", None, None),
                     "c2.mp4": ("passed", "match: 20 <= match_score", 12.5), "c3.mp4": ("not scored", None, None)}


def write_story(out: Path) -> Path:
    """An output folder of hand-written rows after reruns: stage 2 without its aesthetic model (its
    rows, and those of later steps for the clips rejected early, left by an earlier run), an image
    passed on unscored by motion, stage 3 without tags and one clip its match gate rejected; a source
    with no shot long enough, one that failed, one whose failure a rerun resolved."""
    clips = {"a.mp4": "video", "b.mp4": "video", "c.mp4": "video", "d.png": "image", "e.mp4": "video",
             "f.mp4": "video", "g.mp4": "video"}
    write_manifest(out / "meta_clips.jsonl", [{"video_path": k, "type": t} for k, t in clips.items()])
    write_manifest(out / "meta_scene_info.jsonl", [
        {"video_path": "long.mp4", "num_clips": 5}, {"video_path": "short.mp4", "num_clips": 0,
                                                     "skipped": "no shot lasts 3 s"}])
    write_manifest(out / "errors.jsonl", [
        {"stage": "cut", "video_path": "long.mp4", "message": "killed"},
        {"stage": "cut", "video_path": "broken.mp4", "message": "no frame could be decoded"},
        {"stage": "score:motion", "video_path": "c.mp4", "message": "decoding failed"}])
    write_manifest(out / "gate_decisions.jsonl", [
        {"video_path": "a.mp4", "outcome": "rejected", "step": "text", "gate": "text_score <= 0.02", "value": 0.3},
        {"video_path": "b.mp4", "outcome": "passed", "step": None, "gate": None, "value": None},
        {"video_path": "c.mp4", "outcome": "unscored", "step": "motion", "gate": "3 < motion_score", "value": None},
        {"video_path": "d.png", "outcome": "passed", "step": None, "gate": None, "value": None},
        {"video_path": "e.mp4", "outcome": "rejected", "step": "metadata", "gate": "3 <= duration", "value": 1.0},
        {"video_path": "g.mp4", "outcome": "passed", "step": None, "gate": None, "value": None}])
    stale = ["a.mp4", "b.mp4", "c.mp4", "d.png", "e.mp4", "f.mp4"]
    write_manifest(out / "aesthetic_score.jsonl", [{"video_path": k, "aesthetic_score": 5.0} for k in stale])
    write_manifest(out / "text_score.jsonl", [{"video_path": k, "text_score": 0.3 if k == "a.mp4" else 0.0}
                                              for k in ("a.mp4", "b.mp4", "c.mp4", "d.png", "g.mp4")])
    write_manifest(out / "motion_score.jsonl", [{"video_path": k, "motion_score": 4.0}
                                                for k in ("b.mp4", "c.mp4", "g.mp4")])
    write_manifest(out / "camera_motion.jsonl", [{"video_path": k, "camera_motion": "static"}
                                                 for k in ("a.mp4", "b.mp4", "g.mp4")])
    write_manifest(out / "nsfw_score.jsonl", [{"video_path": "a.mp4", "nsfw_score": 0.9},
                                              {"video_path": "b.mp4", "nsfw_score": 0.1},
                                              {"video_path": "d.png", "nsfw_score": 0.2},
                                              {"video_path": "g.mp4", "nsfw_score": 0.1}])
    (out / "superseded").mkdir()
    write_manifest(out / "superseded" / "nsfw_score.jsonl", [{"video_path": "b.mp4", "nsfw_score": 0.7}])
    write_manifest(out / "match_score.jsonl", [{"video_path": "a.mp4", "match_score": 30.0},
                                               {"video_path": "b.mp4", "match_score": 25.0},
                                               {"video_path": "g.mp4", "match_score": 12.5}])
    write_manifest(out / "video_caption.jsonl", [{"video_path": "a.mp4", "video_caption": "An old caption."},
                                                 {"video_path": "b.mp4", "video_caption": "A cat."},
                                                 {"video_path": "g.mp4", "video_caption": "A dog."}])
    write_manifest(out / "caption_decisions.jsonl", [
        {"video_path": "b.mp4", "outcome": "passed", "step": None, "gate": None, "value": None},
        {"video_path": "d.png", "outcome": "unscored", "step": "caption", "gate": None, "value": None},
        {"video_path": "g.mp4", "outcome": "rejected", "step": "match", "gate": "20 <= match_score", "value": 12.5}])
    motion = "an image has one frame: no motion to measure"
    gate = {"reached": 1, "passed": 1, "rejected": 0, "unscored": 0}
    (out / "summary.json").write_text(json.dumps({"stages": {
        "cut": {"sources": 4, "sources_failed": 1, "clips": 6},
        "score": {"skipped": [{"scorer": "aesthetic", "reason": "no aesthetic head in /models"}], "gates": {
            "metadata": {**gate, "reached": 5, "passed": 4, "rejected": 1},
            "text": {**gate, "reached": 4, "passed": 3, "rejected": 1},
            "motion": {**gate, "reached": 3, "passed": 2, "unscored": 1, "skipped": 1, "skip_reasons": {motion: 1}},
            "camera_motion": {**gate, "reached": 2, "passed": 2, "skipped": 1, "skip_reasons": {motion: 1}},
            "nsfw": {**gate, "reached": 2, "passed": 2}}, "train_clips": 2},
        "caption": {"steps": ["caption", "match"], "skipped": [{"step": "tags", "reason": "no LLM"}], "gates": {
            "match": {"reached": 1, "passed": 1, "bounds": [{"key": "match_score", "min": 20, "max": None}]}}}}}))
    return out


def test_a_card_shows_only_the_rows_of_the_steps_its_clip_went_through(tmp_path):
    records = {r["video_path"]: r for r in clip_table(write_story(tmp_path))}
    shown = {key: {k: r[k] for k in ("aesthetic_score", "text_score", "motion_score", "camera_motion", "nsfw_score",
                                      "match_score", "caption") if r.get(k) is not None}
             for key, r in records.items()}
    assert shown == {"a.mp4": {"text_score": 0.3},
                     "b.mp4": {"text_score": 0.0, "motion_score": 4.0, "camera_motion": "static", "nsfw_score": 0.1,
                               "match_score": 25.0, "caption": "A cat."},
                     "c.mp4": {"text_score": 0.0}, "d.png": {"text_score": 0.0, "nsfw_score": 0.2},
                     "e.mp4": {}, "f.mp4": {},
                     "g.mp4": {"text_score": 0.0, "motion_score": 4.0, "camera_motion": "static", "nsfw_score": 0.1,
                               "match_score": 12.5, "caption": "A dog."}}
    assert {key: r["skipped"] for key, r in records.items()} == {
        "a.mp4": ["aesthetic"], "b.mp4": ["aesthetic", "tags"], "c.mp4": ["aesthetic"],
        "d.png": ["aesthetic", "motion", "camera_motion", "tags"], "e.mp4": ["aesthetic"], "f.mp4": [],
        "g.mp4": ["aesthetic", "tags"]}
    assert records["g.mp4"]["reason"] == "match: 20 <= match_score" and records["g.mp4"]["status"] == "passed"
    assert sorted(numbers(list(records.values()), "nsfw_score")) == [0.1, 0.1, 0.2], "plots draw current rows only"
    rows = funnel(json.loads((tmp_path / "summary.json").read_text()))
    assert [(r["label"], r.get("note")) for r in rows if not r["cells"]] == [
        ("aesthetic: not run", "no aesthetic head in /models"), ("tags: not run", "no LLM")]
    assert [r["label"] for r in rows].index("aesthetic: not run") == [r["label"] for r in rows].index("train.jsonl") - 1


def test_the_page_shows_the_skipped_steps_and_the_sources_without_clips(tmp_path):
    out = write_story(tmp_path)
    run_module("video_caption.report", "--output-folder", out, "--no-thumbnails")
    with open_page(out / "report" / "index.html") as (page, errors):
        page.wait_for_selector("body[data-ready='1']")
        rows = page.eval_on_selector_all("#skipped tr", "rows => rows.slice(1).map(r => r.innerText.split('\\t'))")
        motion = "an image has one frame: no motion to measure"
        assert rows == [["stage 2 (score)", "aesthetic", "all: the step never ran", "no aesthetic head in /models"],
                        ["stage 2 (score)", "motion", "1 passed on unscored", motion],
                        ["stage 2 (score)", "camera_motion", "1 passed on unscored", motion],
                        ["stage 3 (caption)", "tags", "all: the step never ran", "no LLM"]]
        assert page.locator("#skipped").is_visible() and page.locator("#no-clips").is_visible()
        sources = page.eval_on_selector_all("#no-clips tr", "rows => rows.slice(1).map(r => r.innerText.split('\\t'))")
        assert sources == [["short.mp4", "skipped", "no shot lasts 3 s"],
                           ["broken.mp4", "failed", "no frame could be decoded"]]
        assert "aesthetic: not run" in page.inner_text("#funnel")
        card = page.locator(".card[data-key='d.png']")
        assert card.locator(".skipped").inner_text() == (
            f"skipped: aesthetic (not run), motion ({motion}), camera_motion ({motion}), tags (not run)")
        rejected = page.locator(".card[data-key='a.mp4'] .scores").inner_text().split()
        assert "text_score" in rejected and not {"aesthetic_score", "camera_motion", "nsfw_score"} & set(rejected)
        # The "dropped by" filter shows exactly the clips each gate rejected, stage 3's as caption_decisions.jsonl
        # says: read from the decisions, never worked out again.
        decided: dict[str, set[str]] = {}
        for name in ("gate_decisions.jsonl", "caption_decisions.jsonl"):
            for row in read_rows(out / name):
                if row["outcome"] == "rejected":
                    decided.setdefault(f"{row['step']}: {row['gate']}", set()).add(row["video_path"])
        assert "match: 20 <= match_score" in decided
        page.select_option("#page-size", "1000")
        options = page.eval_on_selector_all("#gate option", "nodes => nodes.map(n => n.value).filter(Boolean)")
        assert set(decided) <= set(options)
        for gate, keys in decided.items():
            page.select_option("#gate", gate)
            assert set(cards(page)) == keys
        assert errors == []


def test_equal_values_get_one_bar_on_an_axis_of_their_own():
    edges, axis = bins(np.zeros(4), {"min": None, "max": 0.02})
    assert axis == (-0.02, 0.02) and len(edges) == 2 and edges[0] < 0 < edges[1]
    assert bins(np.full(3, 5.0))[1] == (2.5, 7.5)
    assert bins(np.zeros(3), {"min": 0, "max": 1e9})[1] == (-1.0, 1.0), "a bound opened wide is not a scale"
    assert bins(np.array([0.0, 1.0]))[1] == (0.0, 1.0)
    assert "4 at 0" in histogram([0.0] * 4, "text", {"max": 0.02})


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
        assert "motion (an image has one frame" in copy.locator(".skipped").inner_text()

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
        # The truncated jpg gave no clip; the images passed motion unscored.
        texts = "nodes => nodes.map(n => n.textContent)"
        assert page.eval_on_selector_all("#no-clips td.key", texts) == ["photos/broken.jpg"]
        assert "motion" in page.eval_on_selector_all("#skipped td:nth-child(2)", texts)
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


def test_a_summary_kept_out_shows_why_beside_its_frame_captions(tmp_path):
    """A clip through stage 2 whose summary the faithfulness check kept out: its card says the step, the
    reason and what was missing, with the rejected summary and the frame captions it was made from."""
    out = tmp_path
    write_manifest(out / "meta_clips.jsonl", [{"video_path": "p.mp4", "type": "video"}])
    write_manifest(out / "gate_decisions.jsonl", [
        {"video_path": "p.mp4", "outcome": "passed", "step": None, "gate": None, "value": None}])
    frames = ["A woman flips a pancake in a frying pan.", "The woman catches the pancake in the pan."]
    write_manifest(out / "frame_caption.jsonl", [{"video_path": "p.mp4", "sampled_frame_caption": frames}])
    summary = "The scene is a classic example of storytelling."
    write_manifest(out / "summary_caption.jsonl", [{"video_path": "p.mp4", "summary_caption": summary, "degenerate": {
        "reason": "unfaithful", "detail": "missing: woman, pancake, pan; filler: classic example"}}])
    write_manifest(out / "caption_decisions.jsonl", [
        {"video_path": "p.mp4", "outcome": "rejected", "step": "summary", "gate": 'degenerate not in ("unfaithful")',
         "value": "unfaithful", "detail": "missing: woman, pancake, pan; filler: classic example"}])
    (out / "summary.json").write_text(json.dumps({"stages": {"score": {"gates": {}}, "caption": {"gates": {}}}}))
    run_module("video_caption.report", "--output-folder", out, "--no-thumbnails")
    with open_page(out / "report" / "index.html") as (page, errors):
        page.wait_for_selector("body[data-ready='1']")
        card = page.locator(".card[data-key='p.mp4']")
        text = card.inner_text()
        assert "dropped by summary" in text and "unfaithful" in text and "missing: woman, pancake, pan" in text
        assert summary in text
        card.locator("details").click()  # the frame captions load when opened
        for caption in frames:
            card.get_by_text(caption).wait_for()
        assert all(caption in card.inner_text() for caption in frames)
        assert errors == []
