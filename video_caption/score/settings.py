"""Stage 2's own settings and its schema: these, the shared ones (video_caption/settings.py) and each
step's (its ``STEP`` declaration; video_caption/steps.py)."""

from __future__ import annotations

import functools

from video_caption.settings import COMMON, Schema, Setting, integer, names, number
from video_caption.steps import StepSpec, registry

ABOUT = """Stage 2: score stage 1's clips and keep those passing every gate (the metadata gates first, then
the scorers in SCORERS order, each on the survivors of the gates before it).
  OUTPUT_FOLDER=/data/curated bash stage_2_filter_data.sh [flags]
Reads meta_clips.jsonl; writes <scorer> rows (aesthetic_score.jsonl ...), train.jsonl (the clips that
passed every gate) and gate_decisions.jsonl (every clip's fate).  Rerunning resumes: clips already scored
with the same settings are not scored again."""
GATES = "gates (a gate with no value is off)"


def _two(env: str, kind, default=None, help: str = "", group: str = "", **more) -> Setting:
    return Setting(env, kind, default, help, (2,), group, **more)


EXTRA_STEPS = _two("EXTRA_STEPS", names(), None, group="scorers", default_text="none",
                   help="your own steps: a comma list of Python files or module names, each declaring a STEP "
                        "(examples/sharpness.py); their names can then be given in SCORERS")
METADATA = [
    _two("MIN_DURATION", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at least this long, seconds"),
    _two("MAX_DURATION", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at most this long, seconds"),
    _two("MIN_CLIP_SIDE", integer(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at least this wide and high, pixels"),
    _two("MIN_FPS", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips of at least this frame rate"),
]
BATCH = _two("SCORE_BATCH_SIZE", integer(minimum=1), 8, group="execution", help="clips per model call")


def settings(steps: dict[str, StepSpec]) -> list[Setting]:
    """Stage 2's settings with these steps: SCORERS takes their names; each step's own follow."""
    scorers = _two("SCORERS", names(steps, allow_none=True), [n for n, s in steps.items() if s.default],
                   group="scorers", help="the scorers, run in this order, each on the survivors of the gates "
                                         "before it (duplicates, over the whole dataset, always last; none: the "
                                         "metadata gates alone)")
    return [scorers, EXTRA_STEPS, *METADATA, *(s for step in steps.values() for s in step.settings), BATCH]


@functools.cache
def stage_schema(extra: tuple[str, ...] = ()) -> tuple[Schema, dict[str, StepSpec]]:
    """The schema of stage 2 with the user's steps (EXTRA_STEPS), and the steps by name."""
    steps = registry(2, extra)
    return Schema(COMMON + settings(steps)), steps
