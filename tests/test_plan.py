from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from video_caption.cut.plan import (
    ClipAssembler,
    PlanSettings,
    clean_cuts,
    in_transition,
    plan_clips,
    shots,
    split_shot,
    transition_bounds,
)


def test_frame_limits_at_ntsc_rate():
    assert PlanSettings().frame_limits(Fraction(30000, 1001)) == (90, 299)
    assert PlanSettings().frame_limits(25) == (75, 250)


def test_clean_cuts_drops_zero_duplicates_and_out_of_range():
    assert clean_cuts([0, 5, 5, 3, 100, 120], 100) == [3, 5]


def test_shots_cover_the_video():
    assert shots([30, 76], 100) == [(0, 30), (30, 76), (76, 100)]
    assert shots([], 10) == [(0, 10)]


def test_split_keeps_full_pieces_and_a_long_enough_remainder():
    assert split_shot(0, 250, 75, 100) == [(0, 100), (100, 200)]  # remainder 50 < 75: dropped
    assert split_shot(0, 280, 75, 100) == [(0, 100), (100, 200), (200, 280)]
    assert split_shot(10, 80, 75, 100) == []
    assert split_shot(0, 100, 75, 100) == [(0, 100)]


def test_plan_trims_margins_only_at_cuts():
    # 25 fps: min 75, max 250.  Shot 1 [0, 100) keeps its start, loses 2 frames before the cut.
    clips = plan_clips([100, 150], 600, 75, 250, 2)
    assert clips == [(0, 98), (152, 402), (402, 600)]


def test_plan_drops_short_shots():
    assert plan_clips([50], 100, 75, 250, 2) == []


def test_plan_keeps_clips_clear_of_gradual_transitions():
    # A dissolve over frames 100..119: cuts at 100 and 120, the margin at each side, no clip inside.
    assert plan_clips([], 600, 75, 250, 2, transitions=[(100, 119)]) == [(0, 98), (122, 372), (372, 600)]
    # A hard cut detected inside the dissolve changes nothing; a fade-in at the start is left out.
    assert plan_clips([110], 600, 75, 250, 2, transitions=[(100, 119)]) == [(0, 98), (122, 372), (372, 600)]
    assert plan_clips([], 300, 75, 250, 2, transitions=[(0, 12)]) == [(15, 265)]


def _assemble(cuts, num_frames, min_frames, max_frames, margin, transitions=()):
    assembler = ClipAssembler(min_frames, max_frames, margin)
    cut_set = set(clean_cuts(cuts, num_frames)) | transition_bounds(transitions)
    events = []
    for i in range(num_frames):
        events += assembler.push(i, i in cut_set, in_transition(i, transitions))
    events += assembler.finish()
    committed, added, current = [], [], []
    for e in events:
        if e.kind == "add":
            current.append(e.start)
        else:
            assert current == list(range(e.start, e.end)), "a piece gets exactly its frames, in order"
            if e.kind == "commit":
                committed.append((e.start, e.end))
                added += current
            current = []
    assert not current
    return committed


def _ranges(starts_lengths):
    """Disjoint (first, last) ranges from (start, length) pairs."""
    ranges, taken = [], set()
    for start, length in starts_lengths:
        frames = set(range(start, start + length))
        if not frames & taken:
            taken |= frames
            ranges.append((start, start + length - 1))
    return sorted(ranges)


@settings(max_examples=400, deadline=None)
@given(
    num_frames=st.integers(1, 400),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    min_frames=st.integers(1, 60),
    extra=st.integers(0, 80),
    margin=st.integers(0, 4),
    gradual=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 40)), max_size=4),
)
def test_streaming_assembler_equals_plan(num_frames, cuts, min_frames, extra, margin, gradual):
    max_frames = min_frames + extra
    transitions = [(a, min(b, num_frames - 1)) for a, b in _ranges(gradual) if a < num_frames]
    expected = plan_clips(cuts, num_frames, min_frames, max_frames, margin, transitions)
    assert _assemble(cuts, num_frames, min_frames, max_frames, margin, transitions) == expected
    for start, end in expected:
        assert not any(start - margin <= last and first < end + margin for first, last in transitions), \
            "a clip comes within the margin of a transition"


@settings(max_examples=200, deadline=None)
@given(num_frames=st.integers(1, 600), cuts=st.lists(st.integers(0, 600), max_size=12))
def test_clips_never_span_a_cut_and_respect_limits(num_frames, cuts):
    clips = plan_clips(cuts, num_frames, 75, 250, 2)
    for start, end in clips:
        assert 75 <= end - start <= 250
        assert not any(start < c < end for c in cuts if 0 < c < num_frames)
        for c in clean_cuts(cuts, num_frames):
            assert not c <= start < c + 2, "first frames after a cut are trimmed"
            assert not c - 2 < end <= c, "last frames before a cut are trimmed"
    assert clips == sorted(clips)
