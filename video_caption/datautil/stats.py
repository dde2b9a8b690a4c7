"""``datautil stats``: rows, hours of footage, each number column's spread, label counts and, for an
output folder, what each stage-2 gate did."""

from __future__ import annotations

from video_caption.datautil.tables import Table, quote
from video_caption.folder import fields, read_summary
from video_caption.manifest import GATE_DECISIONS

# Text columns counted value by value (besides every true/false column and the labels the steps
# declare): the clips' own and the decisions'.
LABELS = ("type", "method", "codec", "detector", "outcome", "step")
QUANTILES = (5, 25, 50, 75, 95)
OUTCOMES = ("rejected", "unscored")


def compute(con, table: Table) -> dict:
    kinds = table.kinds
    numbers = [name for name, k in kinds.items() if k == "number"]
    declared = fields(read_summary(table.path) if table.folder else {})
    counted = {*LABELS, *(key for key, f in declared.items() if f["kind"] == "label")}
    labels = [name for name, k in kinds.items() if k == "bool" or (k == "text" and name in counted)]
    query, params = table.typed({**{name: "DOUBLE" for name in numbers},
                                 **{name: table.columns[name] for name in labels}})
    # Read once into a table (spilled past the memory limit); exact quantiles then take one column at a time.
    con.execute(f"CREATE OR REPLACE TEMP TABLE stats_rows AS {query}", params)
    hours = f"sum({quote('duration')}) / 3600" if kinds.get("duration") == "number" else "NULL"
    aggregates = ["count(*)", hours] + [f"{f}({quote(name)})" for name in numbers for f in ("count", "min", "max")]
    totals = con.execute(f"SELECT {', '.join(aggregates)} FROM stats_rows").fetchone()
    fractions = ", ".join(str(q / 100) for q in QUANTILES)
    columns = {}
    for i, name in enumerate(numbers):
        count, low, high = totals[2 + 3 * i: 5 + 3 * i]
        quantiles = con.execute(f"SELECT quantile_cont({quote(name)}, [{fractions}]) FROM stats_rows").fetchone()[0]
        quantiles = quantiles or [None] * len(QUANTILES)  # a column with no value
        columns[name] = {"count": count, "min": low, **{f"p{q}": v for q, v in zip(QUANTILES, quantiles, strict=True)},
                         "max": high}
    counts = {}
    for name in labels:
        rows = con.execute(f"SELECT {quote(name)}, count(*) FROM stats_rows GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
        counts[name] = {_label(value): n for value, n in rows}
    result = {"input": str(table.path), "rows": totals[0], "hours": totals[1], "columns": columns, "labels": counts}
    decisions = table.path / GATE_DECISIONS
    if table.folder and decisions.is_file() and decisions.stat().st_size:
        result["gates"] = gates(con, decisions)
    return result


def _label(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def gates(con, path) -> dict:
    """gate_decisions.jsonl summed: clips, those that passed every gate, and per step and gate the
    clips it rejected or could not score."""
    rows = con.execute("SELECT outcome, step, gate, count(*) FROM read_json(?, format='newline_delimited', "
                       "columns={'outcome': 'VARCHAR', 'step': 'VARCHAR', 'gate': 'VARCHAR'}) GROUP BY ALL "
                       "ORDER BY ALL", [str(path)]).fetchall()
    steps: dict[tuple, dict] = {}
    for outcome, step, gate, n in rows:
        if outcome in OUTCOMES:
            steps.setdefault((step, gate), dict.fromkeys(OUTCOMES, 0))[outcome] = n
    return {"clips": sum(n for *_, n in rows), "passed": sum(n for outcome, *_, n in rows if outcome == "passed"),
            "steps": [{"step": step, "gate": gate, **counts} for (step, gate), counts in steps.items()]}


def _number(value) -> str:
    return "-" if value is None else f"{value:.6g}"


def text(stats: dict) -> str:
    """The stats for a person: a table of the number columns, then the labels and the gates."""
    hours = f", {stats['hours']:.2f} hours of footage" if stats["hours"] is not None else ""
    lines = [f"{stats['input']}: {stats['rows']} rows{hours}"]
    if stats["columns"]:
        head = ["column", "count", "min", *(f"p{q}" for q in QUANTILES), "max"]
        table = [head] + [[name, str(c["count"]), *(_number(c[k]) for k in head[2:])]
                          for name, c in stats["columns"].items()]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        for row in table:  # names to the left, numbers to the right
            cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
    for name, counts in stats["labels"].items():
        total = sum(counts.values()) or 1
        lines.append(f"{name}: " + ", ".join(f"{value} {n} ({100 * n / total:.1f}%)" for value, n in counts.items()))
    if "gates" in stats:
        g = stats["gates"]
        lines.append(f"gates ({GATE_DECISIONS}): {g['clips']} clips, {g['passed']} passed every gate")
        lines += [f"  {s['step']} ({s['gate'] or 'no gate'}): {s['rejected']} rejected, {s['unscored']} unscored"
                  for s in g["steps"]]
    return "\n".join(lines)
