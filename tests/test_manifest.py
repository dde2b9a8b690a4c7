import json

import pytest

from video_caption.manifest import ErrorLog, ManifestWriter, done_keys, read_rows


def test_append_and_read_back(tmp_path):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as writer:
        assert writer.append([{"video_path": "a", "x": 1}, {"video_path": "b", "x": "ü"}]) == 2
    assert read_rows(path) == [{"video_path": "a", "x": 1}, {"video_path": "b", "x": "ü"}]
    assert done_keys(path) == {"a", "b"}


def test_a_key_is_never_written_twice(tmp_path):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as writer:
        writer.append([{"video_path": "a"}])
    with ManifestWriter(path) as writer:  # a resumed run
        assert writer.append([{"video_path": "a"}, {"video_path": "b"}]) == 1
    assert [r["video_path"] for r in read_rows(path)] == ["a", "b"]


def test_a_partial_last_line_from_a_killed_run_is_ignored_then_repaired(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"video_path":"a"}\n{"video_path":"b","x":')
    assert read_rows(path) == [{"video_path": "a"}]
    with ManifestWriter(path) as writer:
        writer.append([{"video_path": "b", "x": 2}])
    assert read_rows(path) == [{"video_path": "a"}, {"video_path": "b", "x": 2}]
    assert path.read_bytes().count(b"\n") == 2


def test_a_damaged_complete_line_is_an_error_not_silently_dropped(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"video_path":"a"}\nnot json\n{"video_path":"c"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_rows(path)


def test_error_log_keeps_every_row(tmp_path):
    path = tmp_path / "errors.jsonl"
    with ErrorLog(path) as errors:
        errors.add("cut", "x.mp4", "boom")
        errors.add("cut", "x.mp4", "boom again")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["stage"], r["video_path"], r["message"]) for r in rows] == [("cut", "x.mp4", "boom"),
                                                                           ("cut", "x.mp4", "boom again")]
