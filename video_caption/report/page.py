"""The report's files: index.html (funnel, plots, the gallery's controls, styles and script inline)
and data/*.js (clip records in chunks, frame captions, errors), written atomically."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from video_caption.manifest import write_atomic

ASSETS = Path(__file__).resolve().parent / "assets"
CHUNK = 5000  # clip records per data file: the first page shows after the first file
ERRORS_SHOWN = 1000  # errors.jsonl rows (and sources without clips) listed on the page (the rest: the files)
STAGES = {"score": "stage 2 (score)", "caption": "stage 3 (caption)"}  # the stages that skip steps
# The record fields the page reads, in the order each record is written, before the clip's and its
# steps' keys (``carried``: video_caption/report/collect.py).
FIELDS = ("key", "type", "status", "dropped_by", "reason", "gate", "gate_value", "detail", "thumb", "caption",
          "frames_chunk", "frames_index", "skipped")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _clean(value):
    """A value as JSON can hold it (NaN and infinities become null)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def write_data(folder: Path, records: list[dict], strips: dict[str, str], errors: list[dict],
               carried: list[str]) -> int:
    """data/clips-N.js and data/frames-N.js for ``records``, data/errors.js; returns the chunk count."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    chunks = max(1, -(-len(records) // CHUNK))
    for number in range(chunks):
        part = records[number * CHUNK:(number + 1) * CHUNK]
        rows = []
        for index, record in enumerate(part):
            frames = record.get("frame_captions")
            values = {**record, "key": record["video_path"], "thumb": strips.get(record["video_path"]),
                      "frames_chunk": number if frames else None, "frames_index": index if frames else None}
            rows.append([_clean(values.get(name)) for name in (*FIELDS, *carried)])
        write_atomic(data / f"clips-{number}.js", f"REPORT.chunk({number},{_json(rows)});\n".encode())
        captions = [record.get("frame_captions") for record in part]
        write_atomic(data / f"frames-{number}.js", f"REPORT.frames({number},{_json(captions)});\n".encode())
    for old in data.glob("*-*.js"):  # chunks of an earlier, larger build
        if int(old.stem.split("-")[1]) >= chunks:
            old.unlink()
    write_atomic(data / "errors.js", f"REPORT.errors({_json(errors[:ERRORS_SHOWN])});\n".encode())
    return chunks


def _funnel_table(rows: list[dict]) -> str:
    top = max([value for r in rows for _, _, value in r["cells"] if isinstance(value, (int, float))] or [1]) or 1
    lines = ['<table id="funnel"><tr><th>stage</th><th>step</th><th>numbers</th><th></th></tr>']
    for row in rows:
        cells = " ".join(f'{html.escape(name.replace("_", " "))} <b data-key="{html.escape(path)}">'
                         f'{html.escape(str(value))}</b>' for name, path, value in row["cells"])
        bar = ""
        if "note" in row:  # a step that never ran: its reason, no bar
            cells = f'<span class="skipped">{html.escape(row["note"])}</span>'
        elif isinstance(first := row["cells"][0][2], (int, float)):
            bar = f'<span class="funnel-bar" style="width:{300 * first / top:.0f}px"></span>'
        lines.append(f'<tr><td>{html.escape(row["stage"])}</td><td>{html.escape(row["label"])}</td><td>{cells}</td>'
                     f'<td>{bar}</td></tr>')
    return "\n".join(lines) + "</table>"


def _table(table_id: str, headers: tuple[str, ...], rows: list[tuple[str, ...]], keyed: bool = False) -> str:
    """A table of cells already escaped; ``keyed``: the first column holds paths (styled as keys)."""
    first = '<td class="key">' if keyed else "<td>"
    lines = [f'<table id="{table_id}"><tr>' + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"]
    lines += [f"<tr>{first}{row[0]}</td>" + "".join(f"<td>{cell}</td>" for cell in row[1:]) + "</tr>"
              for row in rows]
    return "\n".join(lines) + "</table>"


def _skipped_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No stage left a step out or passed a clip on unscored.</p>"
    return _table("skipped", ("stage", "step", "clips", "reason"), [
        (STAGES[row["stage"]], html.escape(row["step"]),
         "all: the step never ran" if row["clips"] is None else f'{row["clips"]} passed on unscored',
         html.escape(row["reason"])) for row in rows])


def _sources_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>Every source that stage 1 read gave clips.</p>"
    shown = f" (the first {ERRORS_SHOWN} here)" if len(rows) > ERRORS_SHOWN else ""
    cells = [(html.escape(row["source"]), row["outcome"], html.escape(row["reason"])) for row in rows[:ERRORS_SHOWN]]
    return (f'<p class="meta">{len(rows)} sources gave no clip{shown}: meta_scene_info.jsonl (skipped) and '
            'errors.jsonl (failed).</p>\n' + _table("no-clips", ("source", "outcome", "reason"), cells, keyed=True))


def _plots(plots: list[tuple[str, str]]) -> str:
    return '<div class="plots">' + "".join(f'<div class="plot">{svg}<div class="note">{html.escape(note)}</div></div>'
                                         for svg, note in plots) + "</div>"


def _options(values: list[tuple[str, str]]) -> str:
    return "".join(f'<option value="{html.escape(v)}">{html.escape(label)}</option>' for v, label in values)


def write_index(folder: Path, out: Path, funnel_rows: list[dict], skipped: list[dict], sources: list[dict],
                score_plots: list, label_plots: list, footage_plots: list, meta: dict) -> Path:
    """index.html; ``skipped``: collect.skipped_steps' rows, ``sources``: collect.sources_without_clips';
    ``meta``: what the script needs (chunk count, clip count, gates with counts ...)."""
    gates = [("", "any step")] + [(name, f"{name} ({count})") for name, count in meta["gates"].items()]
    statuses = [("", "any status")] + [(name, f"{name} ({count})") for name, count in meta["statuses"].items()]
    sorts = [("", "manifest order")] + [(name, name) for name in meta["sortable"]]
    meta = {**meta, "fields": [*FIELDS, *meta.pop("carried")], "errors_shown": ERRORS_SHOWN}
    meta_json = _json(meta).replace("</", "<\\/")  # no "</script>" inside the script element
    shown = f" (the first {ERRORS_SHOWN} here)" if meta["errors"] > ERRORS_SHOWN else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video_caption report: {html.escape(out.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{(ASSETS / "report.css").read_text()}</style></head>
<body>
<h1>video_caption report</h1>
<div class="meta">{html.escape(str(out))} &middot; built {time.strftime("%Y-%m-%d %H:%M:%S")} &middot;
{meta["clips"]} clips &middot; numbers from summary.json</div>
<h2>Funnel</h2>
{_funnel_table(funnel_rows) if funnel_rows else "<p>No stage has recorded a summary yet.</p>"}
<h2>Skipped steps</h2>
{_skipped_table(skipped)}
<h2>Sources without clips</h2>
{_sources_table(sources)}
<h2>Scores</h2>
<p class="meta">Each score over the clips that reached its step: blue, kept by its gate; grey, dropped;
red lines, the bounds.</p>
{_plots(score_plots) if score_plots else "<p>No score yet.</p>"}
<h2>Labels</h2>
{_plots(label_plots) if label_plots else "<p>No label yet.</p>"}
<h2>Footage</h2>
{_plots(footage_plots)}
<h2>Clips</h2>
<div class="controls">
<label>status <select id="status">{_options(statuses)}</select></label>
<label>dropped by <select id="gate">{_options(gates)}</select></label>
<label>sort <select id="sort">{_options(sorts)}</select></label>
<select id="order"><option value="desc">highest first</option><option value="asc">lowest first</option></select>
<input id="search" type="search" placeholder="search captions and paths">
<label>per page <select id="page-size"><option>48</option><option>200</option><option>1000</option></select></label>
<span id="results-count"></span> <span id="loading"></span>
</div>
<div id="grid" class="grid"></div>
<div class="pager"><button id="prev">previous</button><span id="page-info"></span><button id="next">next</button></div>
<h2>Errors</h2>
<p class="meta">{meta["errors"]} rows in errors.jsonl{shown}.</p>
<table><thead><tr><th>stage</th><th>file</th><th>message</th><th>time</th></tr></thead>
<tbody id="errors-body"></tbody></table>
<script id="meta" type="application/json">{meta_json}</script>
<script>{(ASSETS / "report.js").read_text()}</script>
</body></html>
"""
    path = folder / "index.html"
    write_atomic(path, body.encode())
    return path
