"""The stage runner on a small step without a model: resume by settings, superseded rows, error rows,
a batch that fails as a whole, part files left by a killed run, input digests."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from video_caption.distributed import Ranks, part_path
from video_caption.manifest import ManifestWriter, read_rows
from video_caption.runner import RunOptions, StageRun, Step, digest


class Multiply(Step):
    """value = n * factor; a row with ``"bad": True`` makes the whole batch raise."""

    stage = "test"
    name = "multiply"
    output = "multiply.jsonl"

    def __init__(self, factor: int, digest_input: bool = False):
        self.factor, self.digest_input = factor, digest_input
        self.seen: list[str] = []
        self.setups = 0

    def settings(self) -> dict:
        return {"factor": self.factor}

    def input_digest(self, row: dict) -> str | None:
        return digest(row["n"]) if self.digest_input else None

    def setup(self, device: str) -> None:
        self.setups += 1

    def process(self, items):
        if any(item.row.get("bad") for item in items):
            raise ValueError("cannot multiply a bad row")
        self.seen += [item.row["video_path"] for item in items]
        return [{"value": item.row["n"] * self.factor} if item.row["n"] >= 0 else KeyError("negative")
                for item in items]


ROWS = [{"video_path": f"c{i}.mp4", "n": i} for i in range(7)]


@pytest.fixture(scope="module")
def ranks():
    return Ranks(cpu=True)


def run(out: Path, ranks, step: Step, rows=ROWS) -> dict[str, dict]:
    options = RunOptions(root=out, device="cpu", batch_size=3, num_workers=0, stall_timeout=0)
    with StageRun("test", "test", out, ranks, options, logging.getLogger("test")) as stage:
        result = stage.step(step, rows)
        stage.finish({})
    return result


def test_resume_redoes_only_what_is_missing_or_made_with_other_settings(tmp_path, ranks):
    rows = [*ROWS, {"video_path": "bad.mp4", "n": 1, "bad": True}, {"video_path": "neg.mp4", "n": -1}]
    first = Multiply(2)
    result = run(tmp_path, ranks, first, rows)
    assert {k: r["value"] for k, r in result.items()} == {r["video_path"]: r["n"] * 2 for r in ROWS}
    assert all(r["multiply_settings"] == {"factor": 2} for r in result.values())
    # The batch holding the bad row was retried clip by clip: its good clips were kept.
    errors = {e["video_path"]: e for e in read_rows(tmp_path / "errors.jsonl")}
    assert set(errors) == {"bad.mp4", "neg.mp4"}
    assert errors["bad.mp4"]["stage"] == "test:multiply" and "cannot multiply" in errors["bad.mp4"]["message"]

    same = Multiply(2)
    run(tmp_path, ranks, same, rows)
    idle = Multiply(2)
    run(tmp_path, ranks, idle, ROWS)
    assert idle.seen == [] and idle.setups == 0, "a step with nothing to do loaded its model"
    assert same.seen == ["neg.mp4"], "a rerun with the same settings redid done clips (or not the failed ones)"
    assert len(read_rows(tmp_path / "multiply.jsonl")) == len(ROWS)

    other = Multiply(3)
    result = run(tmp_path, ranks, other, rows)
    assert sorted(other.seen) == sorted([r["video_path"] for r in ROWS] + ["neg.mp4"])
    assert {k: r["value"] for k, r in result.items()} == {r["video_path"]: r["n"] * 3 for r in ROWS}
    written = read_rows(tmp_path / "multiply.jsonl")
    assert len(written) == len(ROWS) and all(r["multiply_settings"] == {"factor": 3} for r in written)
    superseded = read_rows(tmp_path / "superseded" / "multiply.jsonl")
    assert sorted(r["video_path"] for r in superseded) == sorted(r["video_path"] for r in ROWS)
    assert all(r["multiply_settings"] == {"factor": 2} for r in superseded), "the old rows were not kept"


def test_an_error_is_resolved_by_its_steps_row_on_a_later_run(tmp_path, ranks):
    """errors.jsonl rows name the step's output, so summary.json counts a failure only until a rerun
    writes the clip's row there (any step: materialize's and a user's too)."""
    rows = [*ROWS, {"video_path": "bad.mp4", "n": 1, "bad": True}, {"video_path": "neg.mp4", "n": -1}]
    run(tmp_path, ranks, Multiply(2), rows)
    assert {e["output"] for e in read_rows(tmp_path / "errors.jsonl")} == {"multiply.jsonl"}
    assert json.loads((tmp_path / "summary.json").read_text())["errors_by_kind"] == {"test:multiply": 2}
    run(tmp_path, ranks, Multiply(2), [*ROWS, {"video_path": "bad.mp4", "n": 1}, rows[-1]])
    assert json.loads((tmp_path / "summary.json").read_text())["errors_by_kind"] == {"test:multiply": 1}


def test_parts_of_a_killed_run_are_merged_and_their_stale_rows_superseded(tmp_path, ranks):
    """A run killed before its merge leaves part files; the next run reads them as done work, unless
    they were made with other settings."""
    with ManifestWriter(part_path(tmp_path / "multiply.jsonl", 3)) as part:
        part.append([{"video_path": "c0.mp4", "value": 0, "multiply_settings": {"factor": 2}},
                     {"video_path": "c1.mp4", "value": 1, "multiply_settings": {"factor": 1}},
                     {"video_path": "gone.mp4", "value": 9, "multiply_settings": {"factor": 1}}])
    step = Multiply(2)
    result = run(tmp_path, ranks, step, ROWS)
    assert "c0.mp4" not in step.seen and "c1.mp4" in step.seen
    assert result["c1.mp4"]["value"] == 2
    assert not list(tmp_path.glob(".*.part"))
    kept = {r["video_path"] for r in read_rows(tmp_path / "multiply.jsonl")}
    assert kept == {r["video_path"] for r in ROWS} | {"gone.mp4"}, "a clip outside the input lost its row"
    assert [r["video_path"] for r in read_rows(tmp_path / "superseded" / "multiply.jsonl")] == ["c1.mp4"]


def test_an_input_digest_redoes_the_clips_whose_input_changed(tmp_path, ranks):
    run(tmp_path, ranks, Multiply(2, digest_input=True))
    changed = [dict(r, n=r["n"] + 10) if r["video_path"] == "c4.mp4" else r for r in ROWS]
    step = Multiply(2, digest_input=True)
    result = run(tmp_path, ranks, step, changed)
    assert step.seen == ["c4.mp4"] and result["c4.mp4"]["value"] == 28


class NoImages(Multiply):
    skips_images = "no images here"


class OwnImageSettings(Multiply):
    def image_settings(self) -> dict:
        return {"factor": self.factor, "image": True}


def test_images_are_skipped_by_a_step_that_says_so_and_have_their_own_settings(tmp_path, ranks):
    rows = ROWS[:3] + [{"video_path": "p.jpg", "n": 5, "type": "image"}]
    step = NoImages(2)
    assert set(run(tmp_path, ranks, step, rows)) == {"c0.mp4", "c1.mp4", "c2.mp4"} and "p.jpg" not in step.seen
    assert step.skip_reason(rows[-1]) == "no images here" and step.skip_reason(rows[0]) is None

    run(tmp_path, ranks, OwnImageSettings(2), rows)
    made = {r["video_path"]: r["multiply_settings"] for r in read_rows(tmp_path / "multiply.jsonl")}
    assert made["p.jpg"] == {"factor": 2, "image": True} and made["c0.mp4"] == {"factor": 2}
    again = OwnImageSettings(2)
    run(tmp_path, ranks, again, rows)
    assert again.seen == [], "rows made with the image settings are current for images"
