import json

import pytest

from video_caption.inputs import list_sources, path_under, safe_key


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folder_is_searched_recursively_for_video_and_image_extensions(tmp_path):
    for name in ["a.mp4", "sub/a.mp4", "sub/deeper/b.MKV", "c.webm", "notes.txt", "sub/.hidden.mp4", "p.JPG",
                 "sub/q.webp", "r.png", "s.gif"]:
        _touch(tmp_path / name)
    root, sources = list_sources(tmp_path)
    assert root == tmp_path
    assert [s.key for s in sources] == ["a.mp4", "c.webm", "p.JPG", "r.png", "sub/a.mp4", "sub/deeper/b.MKV",
                                        "sub/q.webp"]


@pytest.mark.parametrize("kind", ["txt", "csv", "jsonl"])
def test_list_files(tmp_path, kind):
    _touch(tmp_path / "v" / "x.mp4")
    _touch(tmp_path / "v" / "y.mp4")
    entries = ["v/x.mp4", str(tmp_path / "v" / "y.mp4")]
    listing = tmp_path / f"list.{kind}"
    if kind == "txt":
        listing.write_text("\n".join(entries) + "\n")
    elif kind == "csv":
        listing.write_text("video_path,caption\n" + "".join(f"{e},hi\n" for e in entries))
    else:
        listing.write_text("".join(json.dumps({"path": e}) + "\n" for e in entries))
    _, sources = list_sources(listing)
    assert [s.key for s in sources] == ["v/x.mp4", "v/y.mp4"]


def test_entries_outside_the_root_stay_inside_the_output(tmp_path):
    outside = _touch(tmp_path / "elsewhere" / "z.mp4")
    listing = tmp_path / "lists" / "l.txt"
    listing.parent.mkdir()
    listing.write_text(f"../elsewhere/z.mp4\n{outside}\n../../../../../../etc/passwd.mp4\n")
    _, sources = list_sources(listing)
    out = tmp_path / "out"
    for source in sources:
        assert source.key.startswith("_external/")
        assert ".." not in source.key.split("/")
        assert out in path_under(out, source.key).parents


def test_output_path_refuses_escapes(tmp_path):
    for key in ["../x", "/etc/x", "a/../../x"]:
        with pytest.raises(ValueError):
            path_under(tmp_path, key)
    assert safe_key(tmp_path / "a" / "b.mp4", tmp_path) == "a/b.mp4"


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_sources(tmp_path / "nope")
