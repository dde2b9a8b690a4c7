"""Other trainers' formats: export an output folder's clips to them, import Open-Sora's CSVs and Panda-70M.

Export (``export``) takes the clips of one manifest: OUTPUT_FOLDER/train.json when it exists (what
stage 3 kept), else train.jsonl (stage 2), else meta_clips.jsonl (stage 1), or the manifest given
(JSONL, or a train.json).  Each clip is joined by ``video_path`` with what the folder knows of it:
its stage-1 row, every step's rows (the files the steps declare, video_caption/folder.py; degenerate
replies left out), and its
final ``caption``: train.json's text, else its summary (or video caption) cleaned as stage 3 cleans
it.  A clip whose file is missing, or whose path leaves the root, is skipped and counted in one
warning; an export that would write no clip is refused, saying why and what to pass.  Formats:

  opensora     a CSV (or, OUTPUT ending .parquet, a Parquet file) with Open-Sora's columns
               (tools/datasets), ``path`` absolute; an empty cell for what one clip lacks (pandas
               reads it as NaN), no column for a score every clip lacks (Open-Sora's --aesmin would
               keep none); labels outside Open-Sora's vocabulary written as their fields declare
  mindone      mindone's curation CSV (tools/t2v_curation): its column names, ``nsfw`` its 0/1 flag;
               ``path`` a link to the clip in a dot-free folder beside the CSV (OUTPUT less .csv),
               its caption next to it where mindone's loader looks (the path cut at its first dot,
               + .json: our clip paths hold a dot in their source's folder name)
  easyanimate  EasyAnimate's train.json (clips with a caption; ``file_path`` relative to the root)
  parquet      one row per clip; the same columns and types for any data of a folder's steps: the
               clip's own, every declared field typed by its declaration (``nsfw_classes`` a map),
               and ``extra``, a JSON object of every other key (per-frame scores, settings)
  webdataset   tar shards: OUTPUT a folder (shard-000000.tar, ...) or a pattern with one %-field
               (out/train-%06d.tar); a new shard every 1000 clips or 1 GiB; per clip
               ``<key>.mp4`` (the clip file, streamed), ``<key>.txt`` (its caption, empty when it has
               none) and ``<key>.json`` (its joined row); keys are the clip's position and its path
               made safe, so unique and free of dots and slashes

Import (``import_file``) turns an Open-Sora CSV or a plain list (one path a line) into an output
folder, the CSV's columns mapped back to our names; a relative path is relative to the working
folder, as Open-Sora's tools open it (or to the file's folder, on request).  Panda-70M's metadata
becomes deferred clips over the user's downloaded videos (datautil/panda70m.py).  It writes
meta_clips.jsonl (stage 2's input: every clip) and, for stage 3, train.jsonl (its input) and the
captions given in train.json, which export then takes as they are.  Stages read ``video_path``
relative to a root (``--root``, default OUTPUT_FOLDER) and refuse absolute ones, so paths inside
OUTPUT_FOLDER become relative to it, and when any lies outside, every path is written relative to
``/``: then run stages 2 and 3, and export, with ``--root /`` (the log says so).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from video_caption.datautil import panda70m
from video_caption.folder import fields, read_summary, step_tables
from video_caption.formats.clean import read_openings
from video_caption.formats.train_json import final_captions, read_train_json, train_entries, write_train_json
from video_caption.gate import Gate
from video_caption.inputs import path_under
from video_caption.manifest import (
    ERRORS,
    IMAGE,
    KEY,
    META_CLIPS,
    TRAIN_JSON,
    TRAIN_JSONL,
    ErrorLog,
    is_deferred,
    read_rows,
    replacing,
    rewrite,
)
from video_caption.media.image import is_image

log = logging.getLogger("video_caption.datautil")

OPENINGS = Path(__file__).resolve().parents[1] / "caption" / "prompts" / "strip_openings.txt"

# The clip's own columns: ours -> Open-Sora's, with the CSV's types, in its order; aspect_ratio
# (height / width), resolution (height * width), id (file name stem) and relpath (video_path) are
# derived on export, not imported.  The steps' columns follow (``opensora_columns``).
CLIP_COLUMNS = {KEY: ("path", str), "caption": ("text", str), "num_frames": ("num_frames", int),
                "height": ("height", int), "width": ("width", int), "fps": ("fps", float)}
CSV_HEAD = {"path": str, "text": str, "num_frames": int, "height": int, "width": int, "aspect_ratio": float,
            "fps": float, "resolution": int}
# Open-Sora's order of the score columns it names (tools/datasets/datautil.py writes them so).
OPENSORA_SCORES = ("aes", "flow", "ocr", "match", "cmotion")
SHARD_CLIPS, SHARD_BYTES = 1000, 1 << 30
SHARD_NAME = "shard-%06d.tar"
# Our Parquet's columns before the steps' fields: the clip's own (stage 1's row; a deferred clip's
# encoder settings go to ``extra``) and its caption, with their types (see ``checked``).
CLIP_TYPES = {KEY: "str", "caption": "str", "source_path": "str", "type": "str", "start_frame": "int",
              "end_frame": "int", "start_time": "float", "end_time": "float", "duration": "float", "fps": "float",
              "num_frames": "int", "width": "int", "height": "int", "shot_change": "float", "deferred": "bool",
              "source_file": "str"}
EXTRA = "extra"
TYPE_NAMES = {str: "str", int: "int", float: "float"}
# The Python types Arrow stores as a column of each kind unchanged (a bool is no number here, a float
# no int: Arrow would turn True into 1.0 and truncate 3.5 to 3).
PLAIN = {"str": {str}, "int": {int}, "float": {int, float}, "bool": {bool}}


# ---- the column mapping (pure) ----

def opensora_columns(summary: dict | None = None) -> tuple[dict[str, tuple[str, type]], dict[str, type]]:
    """(ours -> (Open-Sora's name, type), used both ways; the CSV's columns in order, with their types)."""
    columns = tool_columns(summary, "opensora")
    return columns.names, columns.order


@dataclass(frozen=True)
class Columns:
    """A tool's CSV columns and how a joined row fills them (``tool_columns``)."""

    names: dict[str, tuple[str, type]]  # ours -> (the tool's name, type)
    order: dict[str, type]  # the CSV's columns in order, with their types
    labels: dict[str, dict[str, str]]  # ours -> {our label outside Open-Sora's vocabulary: the one written}
    flags: dict[str, Gate | None]  # ours -> the gate a clip fails where mindone's flag is 1 (None: not known)


def tool_columns(summary: dict | None, tool: str) -> Columns:
    """``tool``'s (opensora or mindone) CSV columns.  The steps' keys (video_caption/folder.py) are
    mapped by their declarations: the tool's name where it has one (Open-Sora's aes, ocr, flow,
    cmotion, match in Open-Sora's order; mindone's num_boxes, total_text_percentage, nsfw ... in step
    order), after the clip columns; every other number keeps ours (text_score ... and a user's
    step's), at the end.  A label is text, a mindone flag (from the run's gates, summary.json) or a
    field declared int an int, any other value a float."""
    declared = fields(summary or {})
    rank = _rank if tool == "opensora" else lambda name: 0
    flags = {key for key, f in declared.items() if tool == "mindone" and f["mindone_flag"]}
    theirs = {key: (f[tool], str if f["kind"] == "label" else int if key in flags or f["type"] == "int" else float)
              for key, f in sorted(declared.items(), key=lambda item: rank(item[1][tool])) if f[tool]}
    ours = {key: (key, float) for key, f in declared.items() if not f[tool] and f["kind"] == "number"}
    tail = {"id": str, "relpath": str} if tool == "opensora" else {}
    gates = run_gates(summary or {})
    return Columns({**CLIP_COLUMNS, **theirs, **ours},
                   {**CSV_HEAD, **dict(theirs.values()), **tail, **dict(ours.values())},
                   {key: f["opensora_labels"] for key, f in declared.items() if f["opensora_labels"]},
                   {key: gates.get(key) for key in flags})


def run_gates(summary: dict) -> dict[str, Gate]:
    """The bound the run's gates put on each key, as summary.json records them (stages 2 and 3)."""
    found = {}
    for stage in ("score", "caption"):
        for gate in (((summary.get("stages") or {}).get(stage) or {}).get("gates") or {}).values():
            for bound in gate.get("bounds") or []:
                values = bound.get("values")
                found[bound["key"]] = Gate(bound["key"], bound.get("min"), bound.get("max"), bool(bound.get("strict")),
                                           None if values is None else tuple(values),
                                           excluded=bool(bound.get("excluded")))
    return found


def fields_table(summary: dict) -> str:
    """docs/formats.md's table (Markdown): each of our keys (the clip's, its caption, the steps'
    declared fields, then the rest) and what each export format writes it as."""
    declared = fields(summary)
    opensora, mindone = tool_columns(summary, "opensora"), tool_columns(summary, "mindone")
    kinds = parquet_kinds(summary)
    own = {KEY: ("file_path", ".mp4 (the clip), .json"), "caption": ("text", ".txt, .json"), "type": ("type", ".json")}

    def tool(columns: Columns, key: str) -> str:
        if key not in columns.names:
            return "—"
        name = f"`{columns.names[key][0]}`"
        if key in columns.labels:
            name += " (" + ", ".join(f"{ours} → {theirs}" for ours, theirs in columns.labels[key].items()) + ")"
        return name + (" (0/1: 1 where the clip fails the run's gate on it)" if key in columns.flags else "")

    lines = ["| our key | opensora | mindone | parquet | easyanimate | webdataset |", "|---|---|---|---|---|---|"]
    for key in [*CLIP_TYPES, *(key for key in declared if key not in CLIP_TYPES)]:
        easyanimate, webdataset = own.get(key, ("—", ".json"))
        lines.append(f"| `{key}` | {tool(opensora, key)} | {tool(mindone, key)} | {kinds[key]} | "
                     + (f"`{easyanimate}`" if easyanimate != "—" else easyanimate) + f" | {webdataset} |")
    lines.append("| any other key (per-frame scores, settings …) | — | — | in `extra` (JSON) | — | .json |")
    return "\n".join(lines) + "\n"


def _rank(name: str) -> int:
    return OPENSORA_SCORES.index(name) if name in OPENSORA_SCORES else len(OPENSORA_SCORES)


def csv_cell(value, kind: type) -> str:
    """One CSV cell of Open-Sora's type: ints without a decimal point (a whole number of a float
    column too, when it is one, like a count of text boxes), floats as Python writes them (they read
    back equal), empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind is str:
        return str(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(kind(value))


def parse_cell(text: str | None, kind: type):
    """A CSV cell as ``kind``; None for an empty cell or NaN (how pandas writes a missing number); a
    float column's cell without a decimal point reads as an int."""
    if text is None or not text.strip() or text.strip().lower() == "nan":
        return None
    if kind is str:
        return text
    if kind is float and re.fullmatch(r"[-+]?\d+", text.strip()):
        return int(text)
    number = float(text)
    if math.isnan(number):
        return None
    return int(number) if kind is int else number


def to_opensora(row: dict, clip_path: Path, columns: Columns | None = None) -> dict:
    """A joined row as ``columns``' record (default: Open-Sora's, with the built-in steps): every
    column, None where unknown; a label outside Open-Sora's vocabulary as its field declares; a
    mindone flag 1 where the clip fails the run's gate on its key."""
    columns = columns or tool_columns({}, "opensora")
    out = {}
    for ours, (theirs, _) in columns.names.items():
        value = row.get(ours)
        if value is not None and ours in columns.labels:
            value = columns.labels[ours].get(value, value)
        if value is not None and ours in columns.flags:
            gate = columns.flags[ours]
            value = None if gate is None else int(not gate.passes({ours: value}))
        out[theirs] = value
    height, width = row.get("height"), row.get("width")
    out.update(path=str(clip_path), id=PurePosixPath(row[KEY]).stem, relpath=row[KEY],
               aspect_ratio=height / width if height and width else None,
               resolution=height * width if height and width else None)
    return {column: out[column] for column in columns.order}


def from_opensora(record: dict) -> dict:
    """A CSV record (strings) as our row: our names, typed, missing values left out; ``video_path``
    is the CSV's ``path`` as written; ``duration`` = num_frames / fps."""
    row = {}
    for ours, (theirs, kind) in opensora_columns()[0].items():
        value = parse_cell(record.get(theirs), kind)
        if value is not None:
            row[ours] = value
    if row.get("num_frames") is not None and row.get("fps"):
        row["duration"] = row["num_frames"] / row["fps"]
    return row


def join_rows(rows: list[dict], tables: list[dict[str, dict]], captions: dict[str, str]) -> list[dict]:
    """Each clip's row merged over what ``tables`` (clip -> row, in order) hold of it, with its
    ``caption`` (None without one); one row per clip, in input order."""
    joined = {}
    for row in rows:
        merged = {}
        for table in tables:
            merged.update(table.get(row[KEY], {}))
        merged.update(row)
        merged["caption"] = captions.get(row[KEY])
        joined.setdefault(row[KEY], merged)
    return list(joined.values())


def sample_key(index: int, video_path: str) -> str:
    """A WebDataset key: unique by ``index``; the path after it, for people, made of letters, digits,
    ``_`` and ``-`` only (webdataset splits a name at its first dot)."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", str(PurePosixPath(video_path).with_suffix("")))
    return f"{index:08d}_{readable.strip('_')[-80:]}"


def shard_pattern(output: Path) -> str:
    """The shards' file names: ``output`` itself when its name holds a %-field, else
    ``output/shard-%06d.tar``."""
    pattern = str(output) if "%" in output.name else str(output / SHARD_NAME)
    try:
        if pattern % 0 == pattern % 1:
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{output}: a shard pattern needs one integer field, as out/shard-%06d.tar") from None
    return pattern


def manifest_root(paths: list[str], output_folder: Path) -> Path:
    """The root imported paths are written relative to: the output folder when they all lie inside
    it, else ``/`` (stages refuse absolute ``video_path`` values, and accept ``--root /``)."""
    folder = Path(os.path.abspath(output_folder))
    inside = all(folder in Path(os.path.abspath(p)).parents for p in paths)
    return folder if inside else Path("/")


# ---- export ----

def _manifest(output_folder: Path, input: Path | None) -> Path:
    """The manifest to export: ``input``, else the folder's train.json, train.jsonl or meta_clips.jsonl."""
    if input is None:
        found = [output_folder / name for name in (TRAIN_JSON, TRAIN_JSONL, META_CLIPS)
                 if (output_folder / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{output_folder}: no {TRAIN_JSON}, {TRAIN_JSONL} or {META_CLIPS} to export")
        input = found[0]
    if not input.is_file():
        raise FileNotFoundError(f"{input}: no such manifest")
    return input


def _input_rows(input: Path) -> tuple[list[dict], dict[str, str]]:
    """The clips of a manifest and the captions it gives (a train.json's texts)."""
    if input.suffix == ".json":
        captions = read_train_json(input)
        return [{KEY: path} for path in captions], captions
    rows = read_rows(input)
    if any(KEY not in row for row in rows):
        raise ValueError(f"{input}: not a manifest of clips (a JSONL file whose rows have {KEY})")
    return rows, {}


def _folder_tables(output_folder: Path, summary: dict) -> list[dict[str, dict]]:
    """The clips' stage-1 rows, then each step's (video_caption/folder.py), degenerate replies left out."""
    clips = {row[KEY]: row for row in read_rows(output_folder / META_CLIPS) if KEY in row}
    steps = step_tables(output_folder, summary, keep=lambda row: "degenerate" not in row)
    return [clips, *steps.values()]


def _stage3_captions(output_folder: Path, rows: list[dict], tables: list[dict[str, dict]]) -> dict[str, str]:
    """Each clip's final caption: train.json's, else its summary or video caption cleaned as stage 3
    cleans it for train.json."""
    texts = {}
    for table in tables:
        texts.update({key: row["video_caption"] for key, row in table.items() if "video_caption" in row})
    for table in tables:  # a summary wins over the VLM's caption it was made from
        texts.update({key: row["summary_caption"] for key, row in table.items() if "summary_caption" in row})
    captions = final_captions(rows, texts, read_openings(OPENINGS))[0] if texts else {}
    captions.update(read_train_json(output_folder / TRAIN_JSON))
    return captions


def _locate(rows: list[dict], root: Path) -> tuple[list[tuple[dict, Path]], list[str]]:
    """(row, clip file) for the rows whose file is there, and the clips of the others."""
    found, skipped = [], []
    for row in rows:
        try:
            path = path_under(root, row[KEY])
        except ValueError:
            skipped.append(row[KEY])
            continue
        if path.is_file():
            found.append((row, path))
        else:
            skipped.append(row[KEY])
    return found, skipped


def _deferred(rows: list[dict], skipped: list[str]) -> int:
    missing = set(skipped)
    return sum(is_deferred(row) for row in rows if row[KEY] in missing)


def nothing_found(manifest: Path, rows: list[dict], root: Path, deferred: int, folder: Path) -> str:
    """Why an export finds no clip to write, and what to pass (``rows``: the manifest's clips,
    ``deferred`` of them deferred clips)."""
    if not rows:
        hint = (f"stage 3 captioned none: pass --input {folder / TRAIN_JSONL} (stage 2's clips) or "
                f"{folder / META_CLIPS} (every clip)" if manifest.name == TRAIN_JSON else
                f"pass --input with a manifest that has clips ({folder / META_CLIPS}: every clip)")
        return f"{manifest} holds no clip: {hint}"
    first = rows[0][KEY]
    if deferred == len(rows):
        return (f"none of the {len(rows)} clips of {manifest} has its file: they are deferred clips (stage 1 "
                f"CLIPS=deferred): make them with 'datautil materialize --output-folder {folder}'")
    return (f"none of the {len(rows)} clips of {manifest} is a file under {root} (first: {first}): pass --root, the "
            f"folder their video_path values are relative to (--root / for an import whose clips lie outside it)")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def filled(records: list[dict], order: dict[str, type]) -> dict[str, type]:
    """The columns of ``order`` but the scores no record has a value in (Open-Sora's --aesmin 4 on an
    empty ``aes`` keeps no clip, --text_score2text reads it as a score); the clip's own columns
    (CSV_HEAD, id, relpath) stay, as Open-Sora's --info writes them (NaN where unknown: an image's fps)."""
    return {column: kind for column, kind in order.items()
            if column in CSV_HEAD or column in ("id", "relpath") or any(not _missing(r[column]) for r in records)}


def _write_csv_or_parquet(records: list[dict], order: dict[str, type], output: Path) -> None:
    """``records``' columns of ``order`` (filled ones only) to ``output``: Parquet when it ends with
    .parquet, else CSV."""
    order = filled(records, order)
    if output.suffix.lower() == ".parquet":
        _write_arrow(typed_table(records, {column: TYPE_NAMES[kind] for column, kind in order.items()}), output)
        return
    with replacing(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(order)
        for record in records:
            writer.writerow(csv_cell(record[column], kind) for column, kind in order.items())


def _write_opensora(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    columns = tool_columns(summary, "opensora")
    _write_csv_or_parquet([to_opensora(row, path, columns) for row, path in clips], columns.order, output)
    return len(clips)


def _links_folder(folder: Path) -> bool:
    """Whether ``folder`` is a mindone export's (links to clips and caption files only), so replaceable."""
    return folder.is_dir() and all(p.is_symlink() or p.suffix == ".json" for p in folder.iterdir())


def _write_mindone(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    """mindone's CSV, and beside it (OUTPUT less .csv) a folder of links to the clips, each named by
    its ``sample_key`` (free of dots), with its caption in ``<key>.json`` ({"caption": ...}): where
    mindone's datautil (tools/t2v_curation/pipeline/datasets/datautil.py, load_caption, run by every
    call as --load-caption defaults to json) looks, ``path.split(".")[0] + ".json"``.  The folder is
    built apart and swapped in, then the CSV written."""
    if output.suffix.lower() != ".csv":
        raise ValueError(f"{output}: mindone's tools read a CSV: give --output NAME.csv")
    folder = Path(os.path.abspath(output.with_suffix("")))
    if "." in str(folder):
        raise ValueError(f"{folder}: mindone looks for a clip's caption at its path cut at the first dot, so the "
                         "folder of the clips' links can hold no dot: give an --output whose path has none but .csv")
    if folder.exists() and not _links_folder(folder):
        raise ValueError(f"{folder} exists and is not a mindone export's folder of links: give another --output")
    columns = tool_columns(summary, "mindone")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    records = []
    try:
        for index, (row, path) in enumerate(clips):
            name = sample_key(index, row[KEY])
            link = f"{name}{path.suffix.lower() or '.mp4'}"
            os.symlink(os.path.abspath(path), staging / link)
            if row.get("caption"):
                (staging / f"{name}.json").write_text(json.dumps({"caption": row["caption"]}, ensure_ascii=False),
                                                      encoding="utf-8")
            records.append(to_opensora(row, folder / link, columns))
        if folder.exists():  # the old folder out of the way, then the new one in
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(staging, folder)
            shutil.rmtree(old)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_csv_or_parquet(records, columns.order, output)
    return len(clips)


def _write_easyanimate(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    rows = [row for row, _ in clips]
    captions = {row[KEY]: row["caption"] for row in rows if row["caption"]}
    if not captions:
        raise ValueError(f"none of the {len(rows)} clips has a caption, and EasyAnimate's train.json holds captioned "
                         "clips only: caption them (stage 3), or export another format")
    if len(captions) < len(rows):
        log.warning("%d clip(s) have no caption: left out of %s", len(rows) - len(captions), output)
    entries = train_entries(rows, captions, set(captions))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_train_json(output, entries)
    return len(entries)


def checked(value, kind: str):
    """``value`` as a column of ``kind`` (str, int, float, bool, or map: names -> numbers) holds it,
    None for a missing one; TypeError when it is not of that kind (nothing is truncated: 3.5 is no int)."""
    if _missing(value):
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "float" and number:
        return float(value)
    if kind == "int" and number and float(value).is_integer():
        return int(value)
    if kind == "bool" and isinstance(value, bool) or kind == "str" and isinstance(value, str):
        return value
    if kind == "map" and isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()):
        return {k: float(v) for k, v in value.items()}
    raise TypeError(f"{value!r} is not {'a map of names to numbers' if kind == 'map' else 'of type ' + kind}")


def typed_table(records: list[dict], kinds: dict[str, str]):
    """An Arrow table of ``records`` with exactly the columns of ``kinds``, each of its kind (see
    ``checked``); a value of another kind is refused, naming its clip and column."""
    import pyarrow as pa

    arrow = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "map": pa.map_(pa.string(), pa.float64())}
    columns = {}
    for name, kind in kinds.items():
        values = [record.get(name) for record in records]
        if not {type(v) for v in values} - {type(None)} <= PLAIN.get(kind, set()):  # else all of its kind already
            for i, record in enumerate(records):
                try:
                    values[i] = checked(values[i], kind)
                except TypeError as exc:
                    clip = record.get(KEY) or record.get("path")
                    raise ValueError(f"{clip}: {name} {exc}, so it cannot be written to its typed column") from None
        columns[name] = pa.array(values, arrow[kind])
    return pa.table(columns)


def parquet_kinds(summary: dict) -> dict[str, str]:
    """Our Parquet's columns and their kinds, the same for any data of a folder's steps: the clip's
    own (CLIP_TYPES), every field the steps declare (video_caption/folder.py), then ``extra``."""
    declared = {key: f["type"] for key, f in fields(summary).items() if key not in CLIP_TYPES}
    return {**CLIP_TYPES, **declared, EXTRA: "str"}


def parquet_record(row: dict, kinds: dict[str, str]) -> dict:
    """A joined row as our Parquet's record: its value of each typed column, and every other key of
    the row (an ``extra`` of its own too) in ``extra``, a JSON object (None when there is none)."""
    rest = {key: value for key, value in row.items() if key not in kinds or key == EXTRA}
    return {**{key: row.get(key) for key in kinds if key != EXTRA},
            EXTRA: json.dumps(rest, ensure_ascii=False) if rest else None}


def arrow_table(rows: list[dict], summary: dict | None = None):
    """The rows as an Arrow table of our Parquet's columns (``parquet_kinds``)."""
    kinds = parquet_kinds(summary or {})
    return typed_table([parquet_record(row, kinds) for row in rows], kinds)


def _write_arrow(table, output: Path) -> None:
    import pyarrow.parquet as pq

    with replacing(output) as tmp:
        pq.write_table(table, tmp)


def _write_parquet(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    _write_arrow(arrow_table([row for row, _ in clips], summary), output)
    return len(clips)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(clips: list[tuple[dict, Path]], pattern: str, max_clips: int = SHARD_CLIPS,
                 max_bytes: int = SHARD_BYTES) -> int:
    """WebDataset shards of the clips (see the module's docstring); a new shard when the next clip
    would pass ``max_clips`` or ``max_bytes``.  Each shard is written hidden and renamed when complete.
    A clip that cannot be opened is skipped; it is opened before anything of it is written, so a
    shard never holds part of a sample.  Returns the samples written."""
    written, skipped, shard, tar, tmp, final, count, size = 0, [], -1, None, None, None, 0, 0
    try:
        for index, (row, path) in enumerate(clips):
            try:
                clip = open(path, "rb")
            except OSError as exc:
                skipped.append(f"{row[KEY]} ({exc.strerror})")
                continue
            with clip:
                clip_size = os.fstat(clip.fileno()).st_size
                if tar is None or (count and (count >= max_clips or size + clip_size > max_bytes)):
                    if tar is not None:
                        tar.close()
                        os.replace(tmp, final)
                    shard += 1
                    final = Path(pattern % shard)
                    final.parent.mkdir(parents=True, exist_ok=True)
                    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
                    tar, count, size = tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT), 0, 0
                key = sample_key(index, row[KEY])
                _add_bytes(tar, f"{key}.json", json.dumps(row, ensure_ascii=False).encode())
                _add_bytes(tar, f"{key}.txt", (row.get("caption") or "").encode())
                info = tarfile.TarInfo(f"{key}{path.suffix.lower() or '.mp4'}")
                info.size, info.mode = clip_size, 0o644
                tar.addfile(info, clip)  # copied in chunks: a clip is never held in memory whole
                count, size, written = count + 1, size + clip_size, written + 1
        if tar is not None:
            tar.close()
            os.replace(tmp, final)
    except BaseException:
        if tar is not None:  # an unfinished shard is removed, never renamed into place
            tar.close()
            tmp.unlink(missing_ok=True)
        raise
    if skipped:
        log.warning("%d clip(s) skipped: cannot be read (first: %s)", len(skipped), ", ".join(skipped[:3]))
    return written


def _write_webdataset(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    return write_shards(clips, shard_pattern(output))


WRITERS = {"opensora": _write_opensora, "mindone": _write_mindone, "easyanimate": _write_easyanimate,
           "parquet": _write_parquet, "webdataset": _write_webdataset}


def export(output_folder: Path, fmt: str, output: Path, input: Path | None = None, root: Path | None = None) -> int:
    """Write the clips of ``input`` (default: train.json, else train.jsonl, else meta_clips.jsonl of
    ``output_folder``), joined with what the folder knows of them, to ``output`` in format ``fmt``.
    ``root``: the folder their ``video_path`` values are relative to (default ``output_folder``).
    Returns the clips written; ValueError, before anything is written, when there is none to write."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(WRITERS)}")
    output_folder, root = Path(output_folder), Path(root or output_folder)
    manifest = _manifest(output_folder, Path(input) if input else None)
    rows, given = _input_rows(manifest)
    summary = read_summary(output_folder)
    tables = _folder_tables(output_folder, summary)
    captions = {**_stage3_captions(output_folder, rows, tables), **given}
    joined = join_rows(rows, tables, captions)
    clips, skipped = _locate(joined, root)
    deferred = _deferred(joined, skipped)
    if not clips:
        raise ValueError(nothing_found(manifest, joined, root, deferred, output_folder))
    if skipped:
        log.warning("%d clip(s) skipped: no file under %s (first: %s)%s", len(skipped), root, ", ".join(skipped[:3]),
                    f"; {deferred} of them are deferred clips: 'datautil materialize' makes their files"
                    if deferred else "")
    written = WRITERS[fmt](clips, Path(output), summary)
    log.info("%s: %d clips written to %s", fmt, written, output)
    return written


# ---- import ----

def _import_records(path: Path, base: Path) -> list[dict]:
    """Our rows of an Open-Sora CSV (.csv) or a plain list (one path a line; blank lines and lines
    starting with # skipped), ``video_path`` absolute: a relative one is relative to ``base``."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:  # captions may hold newlines
            reader = csv.DictReader(handle)
            if "path" not in (reader.fieldnames or []):
                raise ValueError(f"{path}: no 'path' column (Open-Sora's CSV names the clip file 'path')")
            rows = [from_opensora(record) for record in reader]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [{KEY: line.strip()} for line in lines if line.strip() and not line.startswith("#")]
    for number, row in enumerate(rows, start=1):
        if KEY not in row:
            raise ValueError(f"{path}: record {number} has no path")
        row[KEY] = os.path.abspath(base / row[KEY])
        if is_image(row[KEY]):  # Open-Sora's tables mix images in by extension
            row.update(type=IMAGE, num_frames=1)
    return rows


def _opensora_rows(path: Path, output_folder: Path, relative_to_file: bool) -> tuple[list[dict], str]:
    """(the clips of an Open-Sora CSV or a list, ``video_path`` relative to the root the stages must
    be given; what the log says about that root)."""
    records, unique = _import_records(path, path.parent if relative_to_file else Path.cwd()), {}
    for row in records:
        unique.setdefault(row[KEY], row)
    if len(unique) < len(records):
        log.warning("%s: %d rows repeat a path: the first of each kept", path, len(records) - len(unique))
    rows = list(unique.values())
    root = manifest_root([row[KEY] for row in rows], output_folder)
    missing = [row[KEY] for row in rows if not os.path.isfile(row[KEY])]
    if missing:
        log.warning("%d of %d files are not there (first: %s): stages will list them in errors.jsonl",
                    len(missing), len(rows), ", ".join(missing[:3]))
    for row in rows:
        row[KEY] = Path(row[KEY]).relative_to(root).as_posix()
    if root == Path(os.path.abspath(output_folder)):
        return rows, ""
    return rows, (f"; their paths lie outside {output_folder}, so video_path is relative to /: run stages 2 "
                  "and 3, and export, with --root /")


def import_file(path: Path, output_folder: Path, stage: int = 2, fmt: str = "opensora", videos: Path | None = None,
                relative_to_file: bool = False) -> Path:
    """Make an output folder of the clips of ``path``; returns the input manifest of stage ``stage``.

    ``fmt`` opensora: an Open-Sora CSV or a plain list of paths, a relative path relative to the
    working folder (as Open-Sora's tools open them), or with ``relative_to_file`` to the file's
    folder; panda70m: Panda-70M metadata over the downloaded ``videos`` (datautil/panda70m.py), a
    video that is not there being an errors.jsonl row.  Writes meta_clips.jsonl (every clip with the
    file's columns: what stage 2 reads, and what export and ``datautil --all`` join on); for stage 3
    also train.jsonl (the same rows, standing for stage 2's survivors) and, for the rows that have a
    caption, train.json (their captions exactly as given, standing for stage 3's: export takes them).
    Each file is written atomically.  Importing the same file again is a no-op, or writes only what
    is missing (stage 3's files after an import for stage 2); an existing file that holds other clips
    is refused (FileExistsError) rather than replacing a stage's input."""
    if stage not in (2, 3):
        raise ValueError(f"stage {stage}: import writes the input of stage 2 or 3")
    if (fmt == "panda70m") != (videos is not None):
        raise ValueError("--videos DIR (the downloaded videos) goes with --format panda70m, and only with it")
    path, output_folder = Path(path), Path(output_folder)
    if fmt == "panda70m":
        (rows, errors), hint = panda70m.import_rows(path, Path(videos)), ""
    elif fmt == "opensora":
        (rows, hint), errors = _opensora_rows(path, output_folder, relative_to_file), []
    else:
        raise ValueError(f"unknown import format {fmt!r}: opensora or panda70m")
    if not rows:  # most likely the wrong file or --videos folder: nothing is written
        raise ValueError(f"{path}: no clip to import" + (f" ({len(errors)} failed; the first: {errors[0][1]})"
                                                         if errors else ""))
    files = {META_CLIPS: rows, **({TRAIN_JSONL: rows} if stage == 3 else {})}
    captions = {row[KEY]: row["caption"] for row in rows if row.get("caption")}
    entries = train_entries(rows, captions, set(captions)) if stage == 3 and captions else None
    wanted = [name for name, content in [*files.items(), (TRAIN_JSON, entries)]
              if content is not None and not _holds(output_folder / name, content)]
    target = output_folder / (TRAIN_JSONL if stage == 3 else META_CLIPS)
    if not wanted:
        log.info("%s already holds these %d clips%s", output_folder, len(rows), hint)
        return target
    output_folder.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        if name == TRAIN_JSON:
            write_train_json(output_folder / name, entries)
        else:
            rewrite(output_folder / name, files[name])
    if errors and META_CLIPS in wanted:  # not again when only stage 3's files are added
        with ErrorLog(output_folder / ERRORS) as failures:
            for video_id, message in errors:
                failures.add("import", video_id, message)
    log.info("%d clips written to %s%s%s%s", len(rows), ", ".join(str(output_folder / n) for n in wanted),
             f" ({len(captions)} with a caption in {TRAIN_JSON})" if TRAIN_JSON in wanted else "",
             f"; {len(errors)} video(s) not imported ({ERRORS} says why)" if errors else "", hint)
    return target


def _holds(path: Path, content: list[dict]) -> bool:
    """Whether ``path`` holds ``content`` already (False when it is not there); FileExistsError when
    it holds something else."""
    if not path.exists():
        return False
    held = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else read_rows(path)
    if held != content:
        raise FileExistsError(f"{path} exists and holds other clips: remove it, or import into another "
                              "output folder")
    return True
