"""What a step is, said once, and the registry of steps.

A step's module holds its logic (a ``Step``: ``setup`` and ``process``) and one declaration, ``STEP``,
a ``StepSpec``: its name and stage, the files its rows go to, the keys it writes (with what each
means), its settings (the schema's ``Setting``; a gate's bounds carry ``gate=<step>``), its gates
made from those settings, and how to make the step (resolving its model, so a missing one is known
before any work).  The stage, the settings schema, summary.json and, through summary.json, the report
read the declarations; nothing else lists a step.

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

# The built-in steps of stage 2, in their default order (imported when the registry is read).
BUILTIN = {2: ("video_caption.score.aesthetic", "video_caption.score.text", "video_caption.score.motion",
               "video_caption.score.camera_motion", "video_caption.score.nsfw", "video_caption.score.dedup")}


class StepError(ValueError):
    """An EXTRA_STEPS entry that cannot be loaded, or that declares no usable step."""


@dataclass(frozen=True)
class Field:
    key: str
    meaning: str  # one line, with the unit
    label: bool = False  # a name to count (camera_motion), not a number to draw


@dataclass(frozen=True)
class StepSpec:
    name: str
    stage: int
    fields: tuple[Field, ...]
    make: Callable[..., object]  # (parsed settings, device, the steps in run order) -> the Step
    settings: tuple[Setting, ...] = ()
    gates: Callable[[argparse.Namespace], list[Gate]] = lambda args: []  # a gate with no bound is left out
    outputs: tuple[str, ...] = ()  # the files holding its fields (default: <name>_score.jsonl)
    default: bool = True  # run when SCORERS is not given (the built-in steps)

    @property
    def files(self) -> tuple[str, ...]:
        return self.outputs or (f"{self.name}_score.jsonl",)

    def describe(self) -> dict:
        """What summary.json records of it, for the tools that read a folder (the report)."""
        return {"outputs": list(self.files), "fields": {f.key: f.meaning for f in self.fields},
                "labels": [f.key for f in self.fields if f.label]}


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
        if step.stage not in BUILTIN:
            raise StepError(f"EXTRA_STEPS: {entry} declares a stage-{step.stage} step: a user's step can be a "
                            f"step of stage {', '.join(map(str, BUILTIN))} for now")
        if step.name in steps:
            raise StepError(f"EXTRA_STEPS: {entry} declares step {step.name!r}, which is already a step")
        if step.stage == stage:
            steps[step.name] = dataclasses.replace(step, default=False)
    return steps
