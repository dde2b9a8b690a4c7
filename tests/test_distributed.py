"""Per-rank part files and their merge (no processes needed: the merge is plain file logic)."""

from __future__ import annotations

from video_caption.distributed import merge_parts, part_path, parts, read_with_parts
from video_caption.manifest import ManifestWriter, read_rows


def test_parts_are_read_as_done_work_and_merged_once(tmp_path):
    main = tmp_path / "motion_score.jsonl"
    with ManifestWriter(main) as w:
        w.append([{"video_path": "a", "motion_score": 1.0}])
    for rank, keys in enumerate([["b", "d"], ["c", "a"]]):
        with ManifestWriter(part_path(main, rank)) as w:
            w.append([{"video_path": k, "motion_score": 2.0} for k in keys])
    assert sorted(r["video_path"] for r in read_with_parts(main)) == ["a", "a", "b", "c", "d"]
    assert merge_parts(main) == 3
    assert parts(main) == []
    rows = read_rows(main)
    assert sorted(r["video_path"] for r in rows) == ["a", "b", "c", "d"]
    assert rows[0] == {"video_path": "a", "motion_score": 1.0}, "a row already merged was overwritten"
    assert merge_parts(main) == 0


def test_a_merge_killed_before_deleting_parts_does_not_duplicate_rows(tmp_path):
    errors = tmp_path / "errors.jsonl"
    row = {"stage": "score:text", "video_path": "x", "message": "boom"}
    with ManifestWriter(part_path(errors, 3), key=None) as w:
        w.append([row, {**row, "video_path": "y"}])
    # The merge appended the rows, then the run died before the parts were deleted.
    with ManifestWriter(errors, key=None) as w:
        w.append([row, {**row, "video_path": "y"}])
    assert merge_parts(errors, key=None) == 0
    assert len(read_rows(errors)) == 2 and parts(errors) == []


def test_part_files_are_hidden_beside_their_manifest(tmp_path):
    path = part_path(tmp_path / "text_score.jsonl", 12)
    assert path.parent == tmp_path and path.name.startswith(".") and "rank00012" in path.name
