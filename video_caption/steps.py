"""What a step is, said once, and the registry of steps.

A step's module holds its logic (a ``Step``: ``setup`` and ``process``) and one declaration, ``STEP``,
a ``StepSpec``: its name and stage, the files its rows go to, the keys it writes (with what each
means and, where another trainer's format has one, that format's name for it), its settings (the
schema's ``Setting``; a gate's bounds carry ``gate=<step>``), its gates made from those settings,
and how to make the step (resolving its model, so a missing one is known before any work).  The
stages, the settings schema, summary.json, datautil (its folder join, ``--where`` columns, stats and
exports) and the report read the declarations; nothing else lists a step.

The registry is the built-in steps of a stage, then the user's own: ``EXTRA_STEPS``, a comma list of
Python files or module names, each declaring a ``STEP`` the same way (examples/sharpness.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from video_caption.gate import Gate
from video_caption.settings import Setting

# The built-in steps of stages 2 and 3, in their default order (imported when the registry is read).
BUILTIN = {2: ("video_caption.score.aesthetic", "video_caption.score.text", "video_caption.score.motion",
               "video_caption.score.camera_motion", "video_caption.score.nsfw", "video_caption.score.dedup"),
           3: ("video_caption.caption.category", "video_caption.caption.describe", "video_caption.caption.summarize",
               "video_caption.caption.match", "video_caption.caption.tags")}
USER_STAGES = (2,)  # the stages a user's step (EXTRA_STEPS) can join


class StepError(ValueError):
    """An EXTRA_STEPS entry that cannot be loaded, or that declares no usable step."""


@dataclass(frozen=True)
class Field:
    key: str
    meaning: str  # one line, with the unit
    label: bool = False  # a name to count (a camera-motion label), not a number to draw
    text: bool = False  # words (a caption, a clip's path): neither drawn nor counted
    card: bool = True  # on the report's clip cards (False: the card says it otherwise, or it is noise)
    opensora: str = ""  # its column in Open-Sora's CSV, when Open-Sora has one (else ours is kept)
    # Its labels outside Open-Sora's vocabulary, each with the one of Open-Sora's written instead
    # (mindone's curation reads the same labels).
    opensora_labels: tuple[tuple[str, str], ...] = ()
    # Its column in mindone's curation CSV (mindspore-lab/mindone tools/t2v_curation) when not its Open-Sora one
    # (mindone took Open-Sora's names), and whether that column is a 0/1 flag: 1 where the clip fails
    # the run's gate on this key.
    mindone: str = ""
    mindone_flag: bool = False
    # The value's type when it is not a number's float or a label's or text's string: int, bool, or
    # map (names -> numbers); exports type their columns by it (one Parquet schema for any data).
    type: str = ""


@dataclass(frozen=True)
class StepSpec:
    name: str
    stage: int
    fields: tuple[Field, ...]
    # (parsed settings, device, the steps in run order) -> the Step; stage 3 builds its steps itself,
    # around the models they share (its VLM and LLM roles).
    make: Callable[..., object] | None = None  # order: the StepSpecs that run, in order
    settings: tuple[Setting, ...] = ()
    gates: Callable[[argparse.Namespace], list[Gate]] = lambda args: []  # a gate with no bound is left out
    # The files it writes, the first holding its fields (joined onto a clip's row by the tools that
    # read a folder); default: <name>_score.jsonl.
    outputs: tuple[str, ...] = ()
    default: bool = True  # run when SCORERS is not given (the built-in steps)
    last: bool = False  # over the whole dataset, on the survivors of every other gate (duplicates)
    uses: tuple[str, ...] = ()  # steps whose rows it builds on when they run before it
    more_fields: bool = False  # it also writes keys its settings name (tags: TAG_KEYS): tools keep its rows whole

    @property
    def files(self) -> tuple[str, ...]:
        return self.outputs or (f"{self.name}_score.jsonl",)

    def describe(self) -> dict:
        """What summary.json records of it, for the tools that read a folder (a user's step is known
        there only)."""
        return {"outputs": list(self.files), "fields": {f.key: f.meaning for f in self.fields},
                "labels": [f.key for f in self.fields if f.label], "texts": [f.key for f in self.fields if f.text],
                "off_card": [f.key for f in self.fields if not f.card], "more_fields": self.more_fields,
                "opensora": {f.key: f.opensora for f in self.fields if f.opensora},
                "opensora_labels": {f.key: dict(f.opensora_labels) for f in self.fields if f.opensora_labels},
                "mindone": {f.key: f.mindone for f in self.fields if f.mindone},
                "mindone_flags": [f.key for f in self.fields if f.mindone_flag],
                "types": {f.key: f.type for f in self.fields if f.type}}


def _module(entry: str):
    """A module from a file path or a module name."""
    path = Path(entry)
    if entry.endswith(".py"):
        if not path.is_file():
            raise StepError(f"EXTRA_STEPS: no file {entry}")
        name = f"video_caption_extra:{path.resolve()}"  # one module per file, whatever its name
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path.resolve())
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[name]
                raise StepError(f"EXTRA_STEPS: {entry} failed to load: {type(exc).__name__}: {exc}") from exc
        return sys.modules[name]
    try:
        return importlib.import_module(entry)
    except ImportError as exc:
        raise StepError(f"EXTRA_STEPS: cannot import {entry}: {exc}") from exc


def load(entry: str) -> StepSpec:
    step = getattr(_module(entry), "STEP", None)
    if not isinstance(step, StepSpec):
        raise StepError(f"EXTRA_STEPS: {entry} declares no STEP (a video_caption.steps.StepSpec)")
    return step


def registry(stage: int, extra: tuple[str, ...] = ()) -> dict[str, StepSpec]:
    """The steps of ``stage``: the built-in ones, then the user's (``extra``, EXTRA_STEPS), which run only
    when SCORERS names them."""
    steps = {step.name: step for step in map(load, BUILTIN.get(stage, ()))}
    for entry in extra:
        step = load(entry)
        if step.stage not in USER_STAGES or step.make is None:
            raise StepError(f"EXTRA_STEPS: {entry} declares a stage-{step.stage} step: a user's step can be a "
                            f"step of stage {', '.join(map(str, USER_STAGES))} for now, with its make")
        if step.name in steps:
            raise StepError(f"EXTRA_STEPS: {entry} declares step {step.name!r}, which is already a step")
        if step.stage == stage:
            steps[step.name] = dataclasses.replace(step, default=False)
    return steps



def declared(summary: dict | None = None) -> list[dict]:
    """What every step a folder can hold rows of declares (``describe()``, with its ``name``), stage 2's
    then stage 3's, in run order: the built-in steps, then the user's steps a run recorded in
    ``summary`` (summary.json's gates), whose files need not be importable where the folder is read."""
    found = [{"name": step.name, "stage": stage, **step.describe()} for stage in BUILTIN
             for step in registry(stage).values()]
    known = {step["name"] for step in found}
    for stage, section in ((2, "score"), (3, "caption")):
        gates = ((summary or {}).get("stages", {}).get(section) or {}).get("gates") or {}
        found += [{"name": name, "stage": stage,
                   **{k: gate.get(k) or {} for k in ("fields", "opensora", "opensora_labels", "mindone", "types")},
                   "outputs": gate["outputs"],
                   **{k: gate.get(k) or [] for k in ("labels", "texts", "off_card", "mindone_flags")},
                   "more_fields": bool(gate.get("more_fields"))}
                  for name, gate in gates.items() if name not in known and gate.get("outputs")]
    return found
