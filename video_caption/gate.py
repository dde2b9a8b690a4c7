"""Gates and their decisions, for stages 2 and 3 (pure functions, no I/O).

A gate is a bound on one key of a clip's row: ``min`` (keep when value >= min, or > min when
``strict``) and/or ``max``; or, for a label, the ``values`` it may take (keep when it is one of
them; with ``excluded``, when it is none of them).  A gate on what only videos have (duration, fps)
lets images through.  Stage 2 applies the cheap metadata gates first, then each scorer's gates in
the order the scorers run, so a later (costlier) scorer only ever sees survivors; stage 3's steps
gate in the order they run the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from video_caption.manifest import IMAGE, media_type


@dataclass(frozen=True)
class Gate:
    key: str
    min: float | None = None
    max: float | None = None
    strict: bool = False  # open bounds: min < value < max
    values: tuple | None = None  # a label gate: the values kept
    videos_only: bool = False  # images have no such value (duration, fps) and pass
    excluded: bool = False  # a label gate: ``values`` are the ones dropped

    def passes(self, row: dict) -> bool:
        if self.videos_only and media_type(row) == IMAGE:
            return True
        value = row.get(self.key)
        if self.values is not None:
            return (value in self.values) != self.excluded
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.min is not None and (value <= self.min if self.strict else value < self.min):
            return False
        if self.max is not None and (value >= self.max if self.strict else value > self.max):
            return False
        return True

    def bounds(self) -> dict:
        """What the gate keeps, as data (summary.json; the report draws thresholds from it)."""
        return {"key": self.key, "min": self.min, "max": self.max, "strict": self.strict,
                "values": list(self.values) if self.values is not None else None, "excluded": self.excluded}

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.key} {'not in' if self.excluded else 'in'} ({', '.join(json.dumps(v) for v in self.values)})"
        lo = "" if self.min is None else f"{self.min:g} {'<' if self.strict else '<='} "
        hi = "" if self.max is None else f" {'<' if self.strict else '<='} {self.max:g}"
        return f"{lo}{self.key}{hi}"


def decision(key: str, outcome: str, step: str | None = None, gate: Gate | None = None,
              value: object = None) -> dict:
    """One row of gate_decisions.jsonl: a clip's fate.  ``outcome`` is ``passed``, ``rejected`` (by
    ``step``'s ``gate``, with the ``value`` it had) or ``unscored`` (``step`` could not score it: its
    errors.jsonl row says why).  Every row has every field, so the file loads as one table."""
    return {"video_path": key, "outcome": outcome, "step": step, "gate": gate.describe() if gate else None,
            "value": value}


def split_by_gates(rows: list[dict], gates: list[Gate]) -> tuple[list[dict], list[tuple[dict, Gate]]]:
    """(rows passing every gate, [(row, first gate it failed)])."""
    kept, rejected = [], []
    for row in rows:
        failed = next((g for g in gates if not g.passes(row)), None)
        if failed is None:
            kept.append(row)
        else:
            rejected.append((row, failed))
    return kept, rejected
