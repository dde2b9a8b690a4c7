from video_caption.gate import Gate, split_by_gates


def test_bounds_inclusive_and_strict():
    assert Gate("a", min=4.0).passes({"a": 4.0})
    assert not Gate("a", min=4.0).passes({"a": 3.99})
    assert Gate("t", max=0.02).passes({"t": 0.02})
    motion = Gate("m", min=3, max=8, strict=True)
    assert motion.passes({"m": 5}) and not motion.passes({"m": 3}) and not motion.passes({"m": 8})


def test_missing_or_nan_score_never_passes():
    assert not Gate("a", min=0).passes({})
    assert not Gate("a", min=0).passes({"a": float("nan")})


def test_split_reports_the_first_failed_gate():
    gates = [Gate("duration", min=3), Gate("aesthetic_score", min=4.0)]
    rows = [{"duration": 5, "aesthetic_score": 5}, {"duration": 2, "aesthetic_score": 1}, {"duration": 4,
                                                                                           "aesthetic_score": 3}]
    kept, rejected = split_by_gates(rows, gates)
    assert kept == [rows[0]]
    assert [(r["duration"], g.key) for r, g in rejected] == [(2, "duration"), (4, "aesthetic_score")]
    assert gates[1].describe() == "4 <= aesthetic_score"


def test_a_label_gate_keeps_only_its_values():
    camera = Gate("camera_motion", values=("static", "pan_left"))
    assert camera.passes({"camera_motion": "static"}) and not camera.passes({"camera_motion": "zoom_in"})
    assert not camera.passes({})
    assert camera.describe() == 'camera_motion in ("static", "pan_left")'
    assert Gate("duplicate", values=(False,)).passes({"duplicate": False})
    assert not Gate("duplicate", values=(False,)).passes({"duplicate": True})


def test_a_gate_on_what_only_videos_have_lets_images_through():
    duration = Gate("duration", min=3, videos_only=True)
    assert duration.passes({"type": "image"}) and not duration.passes({"type": "video", "duration": 2})
    assert not duration.passes({"video_path": "c.mp4", "duration": 2}), "a row without a type is a video"
    assert duration.passes({"video_path": "p.JPG"}), "... unless its file is an image"
    assert not Gate("width", min=256).passes({"type": "image", "width": 100})


def test_stage_3_fates_follow_the_steps_in_their_order():
    from video_caption.caption.category import category_gates
    from video_caption.caption.fates import Gated, Made, fates

    labels = {"a": "street", "b": "nature", "c": "street", "d": "street", "e": "street", "f": "street", "g": "street",
              "h": "street", "i": "street", "j": "street"}
    made = Made(before=[Gated("category", {k: {"category": c} for k, c in labels.items()},
                              category_gates(["street", "nature"], ["nature"]))],
                captioned={"a", "b", "d", "e", "f", "g", "h", "i", "j"}, summarized={"a", "d", "f", "g", "h", "i", "j"},
                degenerate={"d": ("summary", {"reason": "echo", "detail": "the frame captions given back"})},
                captions={"a": "A.", "g": "G.", "h": "H.", "i": "I.", "j": "J."},
                after=[Gated("match", {"a": {"match_score": 25.0}, "g": {"match_score": 10.0},
                                       "h": {"match_score": 21.0}, "i": {"match_score": 30.0}},
                             [Gate("match_score", min=20)]),
                       Gated("tags", {"a": {}, "i": {}})], unmade={"i"})
    rows = [{"video_path": k} for k in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]]
    got = {f["video_path"]: (f["outcome"], f["step"], f["gate"], f["value"]) for f in fates(rows, made)}
    assert got == {
        "a": ("passed", None, None, None),
        "b": ("rejected", "category", 'category not in ("nature")', "nature"),
        "c": ("unscored", "caption", None, None),
        "d": ("rejected", "summary", 'degenerate not in ("empty", "refusal", "echo", "repetition", "language", '
                                     '"truncated", "unfaithful")', "echo"),
        "e": ("unscored", "summary", None, None),
        "f": ("rejected", "clean", "1 <= caption_chars", 0),
        "g": ("rejected", "match", "20 <= match_score", 10.0),
        "h": ("unscored", "tags", None, None),
        "i": ("unscored", "materialize", None, None),
        "j": ("unscored", "match", None, None),
        "k": ("unscored", "category", None, None),
    }
    details = {f["video_path"]: f["detail"] for f in fates(rows, made)}
    assert details.pop("d") == "the frame captions given back" and set(details.values()) == {None}
