"""Other trainers' formats: export an output folder's clips to them, import Open-Sora's CSVs and Panda-70M.

Export (``export``) takes the clips of one manifest: OUTPUT_FOLDER/train.json when it exists (what
stage 3 kept), else train.jsonl (stage 2), else meta_clips.jsonl (stage 1), or the manifest given
(JSONL, or a train.json).  Each clip is joined by ``video_path`` with what the folder knows of it:
its stage-1 row, every step's rows (the files the steps declare, video_caption/folder.py; degenerate
replies left out), and its
final ``caption``: train.json's text, else its summary (or video caption) cleaned as stage 3 cleans
it.  A clip whose file is missing, or whose path leaves the root, is skipped and counted in one
warning.  Formats:

  opensora     a CSV with Open-Sora's columns (tools/datasets), ``path`` absolute; empty cells for
               what is not known (pandas reads them as NaN)
  easyanimate  EasyAnimate's train.json (clips with a caption; ``file_path`` relative to the root)
  parquet      one row per clip, every joined column, nested lists and dicts kept
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
import tarfile
from pathlib import Path, PurePosixPath

from video_caption.datautil import panda70m
from video_caption.folder import fields, read_summary, step_tables
from video_caption.formats.clean import read_openings
from video_caption.formats.train_json import final_captions, read_train_json, train_entries, write_train_json
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


# ---- the column mapping (pure) ----

def opensora_columns(summary: dict | None = None) -> tuple[dict[str, tuple[str, type]], dict[str, type]]:
    """(ours -> (Open-Sora's name, type), used both ways; the CSV's columns in order, with their types).
    The steps' keys (video_caption/folder.py) are mapped by their declarations: Open-Sora's name where
    it has one (aes, ocr, flow, cmotion, match), after its clip columns; every other number keeps
    ours (text_score ... and a user's step's), at the end."""
    declared = fields(summary or {})
    theirs = {key: (f["opensora"], str if f["kind"] == "label" else float)
              for key, f in sorted(declared.items(), key=lambda item: _rank(item[1]["opensora"])) if f["opensora"]}
    ours = {key: (key, float) for key, f in declared.items() if not f["opensora"] and f["kind"] == "number"}
    order = {**CSV_HEAD, **dict(theirs.values()), "id": str, "relpath": str, **dict(ours.values())}
    return {**CLIP_COLUMNS, **theirs, **ours}, order


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


def to_opensora(row: dict, clip_path: Path, summary: dict | None = None) -> dict:
    """A joined row as Open-Sora's CSV columns (every column, None where unknown)."""
    columns, order = opensora_columns(summary)
    out = {theirs: row.get(ours) for ours, (theirs, _) in columns.items()}
    height, width = row.get("height"), row.get("width")
    out.update(path=str(clip_path), id=PurePosixPath(row[KEY]).stem, relpath=row[KEY],
               aspect_ratio=height / width if height and width else None,
               resolution=height * width if height and width else None)
    return {column: out[column] for column in order}


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

def _input_rows(output_folder: Path, input: Path | None) -> tuple[list[dict], dict[str, str]]:
    """The clips to export and the captions their manifest gives (a train.json's texts)."""
    if input is None:
        found = [output_folder / name for name in (TRAIN_JSON, TRAIN_JSONL, META_CLIPS)
                 if (output_folder / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{output_folder}: no {TRAIN_JSON}, {TRAIN_JSONL} or {META_CLIPS} to export")
        input = found[0]
    if not input.is_file():
        raise FileNotFoundError(f"{input}: no such manifest")
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


def _locate(rows: list[dict], root: Path) -> list[tuple[dict, Path]]:
    """(row, clip file) for the rows whose file is there; the others are skipped in one warning."""
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
    if skipped:
        missing = set(skipped)
        deferred = sum(is_deferred(row) for row in rows if row[KEY] in missing)
        log.warning("%d clip(s) skipped: no file under %s (first: %s)%s", len(skipped), root, ", ".join(skipped[:3]),
                    f"; {deferred} of them are deferred clips: 'datautil materialize' makes their files"
                    if deferred else "")
    return found


def _write_opensora(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    order = opensora_columns(summary)[1]
    with replacing(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(order)
        for row, path in clips:
            record = to_opensora(row, path, summary)
            writer.writerow(csv_cell(record[column], kind) for column, kind in order.items())
    return len(clips)


def _write_easyanimate(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    rows = [row for row, _ in clips]
    captions = {row[KEY]: row["caption"] for row in rows if row["caption"]}
    if len(captions) < len(rows):
        log.warning("%d clip(s) have no caption: left out of %s", len(rows) - len(captions), output)
    entries = train_entries(rows, captions, set(captions))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_train_json(output, entries)
    return len(entries)


def _writable(kind) -> bool:
    """Whether Parquet can store an Arrow type (it cannot store a struct without fields: an empty dict)."""
    import pyarrow as pa

    if pa.types.is_struct(kind):
        return kind.num_fields > 0 and all(_writable(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _writable(kind.value_type)
    return True


def arrow_table(rows: list[dict]):
    """The rows as an Arrow table, a column per key; a column Arrow cannot type as one (values of
    mixed kinds) or Parquet cannot store is kept as JSON text."""
    import pyarrow as pa

    names = list(dict.fromkeys(key for row in rows for key in row)) or [KEY]
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            column = None
        if column is None or not _writable(column.type):
            log.info("parquet: column %s stored as JSON text (its values are of mixed kinds)", name)
            column = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
                              pa.string())
        columns[name] = column
    return pa.table(columns)


def _write_parquet(clips: list[tuple[dict, Path]], output: Path, summary: dict) -> int:
    import pyarrow.parquet as pq

    table = arrow_table([row for row, _ in clips])
    with replacing(output) as tmp:
        pq.write_table(table, tmp)
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


WRITERS = {"opensora": _write_opensora, "easyanimate": _write_easyanimate, "parquet": _write_parquet,
           "webdataset": _write_webdataset}


def export(output_folder: Path, fmt: str, output: Path, input: Path | None = None, root: Path | None = None) -> int:
    """Write the clips of ``input`` (default: train.json, else train.jsonl, else meta_clips.jsonl of
    ``output_folder``), joined with what the folder knows of them, to ``output`` in format ``fmt``.
    ``root``: the folder their ``video_path`` values are relative to (default ``output_folder``).
    Returns the clips written."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(WRITERS)}")
    output_folder = Path(output_folder)
    rows, given = _input_rows(output_folder, Path(input) if input else None)
    summary = read_summary(output_folder)
    tables = _folder_tables(output_folder, summary)
    captions = {**_stage3_captions(output_folder, rows, tables), **given}
    clips = _locate(join_rows(rows, tables, captions), Path(root or output_folder))
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
