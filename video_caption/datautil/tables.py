"""Manifests and output folders as DuckDB queries, and the JSONL files written from them.

An input is a manifest (JSONL) or an output folder.  A manifest's rows travel as their own JSON text
(``read_ndjson_objects``), so a filtered, merged or sharded row is the input line byte for byte: nested
values, integers and absent keys stay as they were, and nothing is parsed that no query reads.  A
folder's rows are its clip manifest (train.jsonl, else meta_clips.jsonl; with ``every``,
meta_clips.jsonl: every clip, those stage 2 rejected too) left-joined on video_path with every step
file present (those the steps declare: video_caption/folder.py), each column taken from the first
file that has it, the ``*_settings`` columns left out; they are made as JSON from the files' raw
values.  Columns and their types come from DuckDB's sample of each file (its first 20,480 rows).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from video_caption.datautil.expr import Condition, json_path, where_sql
from video_caption.folder import read_summary, step_files
from video_caption.manifest import KEY, META_CLIPS, TRAIN_JSONL, replacing

if TYPE_CHECKING:  # pyarrow (0.3 s to import) only where shard streams lines
    import pyarrow as pa

# DuckDB spills joins, sorts and tables past this to a folder under $TMPDIR; its own buffers come
# on top, so a run stays under 2 GB (bench/datautil_scale.py).
MEMORY_LIMIT = "1GB"
SETTINGS_SUFFIX = "_settings"
NUMBER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}
# One JSON text per row, nothing quoted or escaped: a single-column CSV whose delimiter (a control
# character) never occurs in a JSON line.
LINES = "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01'"
ROW = '"_datautil_row"'  # a folder's clip manifest's row number, to keep its order
BATCH_ROWS = 1 << 17


class InputError(ValueError):
    """An input that cannot be used as asked; the message names it."""


def connect() -> duckdb.DuckDBPyConnection:
    spill = Path(tempfile.gettempdir()) / f"video_caption_datautil.{os.getpid()}"
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill)})
    con.execute("SET enable_progress_bar = false")  # it would be written into a command's output (stats --json)
    return con


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def kind(duckdb_type: str) -> str:
    """How a filter compares a column: ``number``, ``text``, ``bool``, or ``other`` (lists, objects, mixed)."""
    if duckdb_type in NUMBER_TYPES or duckdb_type.startswith("DECIMAL"):
        return "number"
    return {"VARCHAR": "text", "BOOLEAN": "bool"}.get(duckdb_type, "other")


def describe(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """A manifest's columns and their DuckDB types, from DuckDB's sample of its rows ({} when empty)."""
    if path.stat().st_size == 0:
        return {}
    rows = con.execute("DESCRIBE SELECT * FROM read_json(?, format='newline_delimited')", [str(path)]).fetchall()
    return {name: type_ for name, type_, *_ in rows}


def folder_files(folder: Path, every: bool = False) -> list[Path]:
    """An output folder's clip manifest (``every``: meta_clips.jsonl, all its clips), then its step
    files present."""
    names = (META_CLIPS,) if every else (TRAIN_JSONL, META_CLIPS)
    base = next((folder / name for name in names if (folder / name).is_file()), None)
    if base is None:
        made_by = "stage 1 or datautil import" if every else "stage 1 or 2"
        raise InputError(f"{folder}: no {' or '.join(names)} (not an output folder of {made_by})")
    steps = [folder / name for name in step_files(read_summary(folder)).values()]
    return [base] + [path for path in steps if path.is_file()]


@dataclass
class Table:
    """An input: a manifest, or an output folder (``files``: its clip manifest, then the step files
    joined to it, each with the columns it gives and their DuckDB types)."""

    path: Path
    files: list[tuple[Path, dict[str, str]]]

    @property
    def folder(self) -> bool:
        return self.path.is_dir()

    @property
    def columns(self) -> dict[str, str]:
        return {name: type_ for _, columns in self.files for name, type_ in columns.items()}

    @property
    def kinds(self) -> dict[str, str]:
        return {name: kind(type_) for name, type_ in self.columns.items()}

    def require_key(self) -> None:
        if self.columns and KEY not in self.columns:
            raise InputError(f"{self.path} has no {KEY} column")

    def _joined(self, types: dict[str, str], ordered: bool = False) -> tuple[str, list, dict[str, str]]:
        """(FROM clause reading the columns of ``types`` with those types from the files, joined on
        video_path; its parameters; each column's SQL)."""
        sources, params, exprs = [], [], {}
        for i, (path, columns) in enumerate(self.files):
            wanted = {KEY: "VARCHAR", **{name: types[name] for name in columns if name in types}}
            if i and len(wanted) == 1:
                continue
            scan = "read_json(?, format='newline_delimited', columns=?)"
            if i == 0:
                scan = f"(SELECT *, row_number() OVER () AS {ROW} FROM {scan})" if ordered else scan
                sources.append(f"{scan} t0")
            else:
                sources.append(f"LEFT JOIN {scan} t{i} ON t{i}.{quote(KEY)} = t0.{quote(KEY)}")
            params += [str(path), wanted]
            exprs.update({name: f"t{i}.{quote(name)}" for name in wanted if name not in exprs})
        return " ".join(sources), params, {name: exprs[name] for name in types}

    def rows(self) -> tuple[str, list]:
        """(query of every row as ``json``, its JSON text, and its ``video_path``; parameters)."""
        if not self.folder:
            return (f"SELECT json::VARCHAR AS json, json ->> '$.{KEY}' AS {quote(KEY)} "
                    "FROM read_ndjson_objects(?)", [str(self.path)])
        types = {name: "VARCHAR" if name == KEY else "JSON" for name in self.columns}
        source, params, exprs = self._joined(types, ordered=True)
        fields = ", ".join(f"{quote(name)} := {expr}" for name, expr in exprs.items())
        return (f"SELECT to_json(struct_pack({fields}))::VARCHAR AS json, t0.{quote(KEY)} AS {quote(KEY)} "
                f"FROM {source} ORDER BY t0.{ROW}"), params

    def typed(self, types: dict[str, str]) -> tuple[str, list]:
        """(query of the columns of ``types`` read as those DuckDB types; parameters)."""
        source, params, exprs = self._joined(types)
        # A query needs a column even when none is wanted: its rows still count.
        columns = ", ".join(f"{expr} AS {quote(name)}" for name, expr in exprs.items()) or "NULL::BOOLEAN AS _"
        return f"SELECT {columns} FROM {source}", params


def open_table(con: duckdb.DuckDBPyConnection, path: Path, every: bool = False) -> Table:
    """A manifest, or an output folder's clips joined with its step files (``every``: all its clips,
    not only stage 2's survivors)."""
    if every and not path.is_dir():
        raise InputError(f"{path}: --all takes an output folder (its meta_clips.jsonl joined with its step files)")
    if path.is_dir():
        files, taken = [], set()
        for i, file in enumerate(folder_files(path, every)):
            columns = describe(con, file)
            if columns and KEY not in columns:
                raise InputError(f"{file} has no {KEY} column, so it cannot be joined")
            given = {name: type_ for name, type_ in columns.items()
                     if not name.endswith(SETTINGS_SUFFIX) and name not in taken and (i == 0 or name != KEY)}
            taken.update(given)
            files.append((file, given))
        return Table(path, files)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest or folder")
    return Table(path, [(path, describe(con, path))])


def write(con: duckdb.DuckDBPyConnection, query: str, params: list, output: Path) -> int:
    """Write the ``json`` column of ``query`` to ``output`` as JSONL, atomically (a reader sees the
    old file or the whole new one); returns the number of rows."""
    with replacing(output) as tmp:
        return con.execute(f"COPY (SELECT json FROM ({query})) TO ? ({LINES})", [*params, str(tmp)]).fetchone()[0]


def filter_rows(con, table: Table, conditions: list[Condition], output: Path) -> int:
    where, where_params, columns = where_sql(conditions, table.kinds)  # refuses before anything is written
    source, params = table.rows()
    query = f"SELECT json FROM (SELECT json, json_extract(json, ?::VARCHAR[]) AS _v FROM ({source})) WHERE {where}"
    return write(con, query, [[json_path(c) for c in columns], *params, *where_params], output)


def merge(con, tables: list[Table], output: Path) -> int:
    """The union of the tables, one row per video_path: the last table that has it gives its row."""
    for table in tables:
        table.require_key()
    parts, params = [], []
    for i, table in enumerate(tables):
        source, source_params = table.rows()
        parts.append(f"SELECT json, {quote(KEY)}, {i} AS _src FROM ({source})")
        params += source_params
    union = " UNION ALL ".join(parts)
    # Written out twice, not as a CTE, so that DuckDB does not keep every row to read it again.
    query = (f"SELECT u.json FROM ({union}) u JOIN (SELECT {quote(KEY)}, max(_src) AS _src FROM ({union}) "
             f"GROUP BY {quote(KEY)}) w USING ({quote(KEY)}, _src)")
    return write(con, query, params * 2, output)


def keyed(con, a: Table, b: Table, output: Path, join: str) -> int:
    """The rows of ``a`` whose video_path is (``SEMI``) or is not (``ANTI``) in ``b``."""
    a.require_key()
    b.require_key()
    source_a, params_a = a.rows()
    source_b, params_b = b.rows()
    query = (f"SELECT a.json FROM ({source_a}) a {join} JOIN (SELECT {quote(KEY)} FROM ({source_b})) b "
             f"ON a.{quote(KEY)} = b.{quote(KEY)}")
    return write(con, query, params_a + params_b, output)


def shard_name(part: int, parts: int) -> str:
    return f"part-{part:05d}-of-{parts:05d}.jsonl"


def shard(con, table: Table, parts: int, folder: Path) -> int:
    """Deal the rows into ``parts`` files by the MD5 of their video_path (the same shards on every
    run and machine); returns the number of rows.  DuckDB's own partitioned write runs out of memory
    on millions of rows, so the rows stream here in batches, each written part by part."""
    table.require_key()
    source, params = table.rows()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shard.", dir=folder))
    query = (f"SELECT json || chr(10) AS line, (md5_number(coalesce({quote(KEY)}, json)) % ?::UHUGEINT)::INTEGER "
             f"AS part FROM ({source})")
    count = 0
    try:
        with contextlib.ExitStack() as files:
            outs = [files.enter_context(open(staging / shard_name(part, parts), "wb")) for part in range(parts)]
            for batch in con.sql(query, params=[parts, *params]).to_arrow_reader(BATCH_ROWS):
                lines, part = batch.column(0), batch.column(1).to_numpy()
                ends = np.cumsum(np.bincount(part, minlength=parts))
                lines = lines.take(np.argsort(part, kind="stable"))
                for out, start, end in zip(outs, np.r_[0, ends[:-1]], ends, strict=True):
                    out.write(_characters(lines.slice(start, end - start)))
                count += batch.num_rows
            for out in outs:
                out.flush()
                os.fsync(out.fileno())
        for part in range(parts):
            os.replace(staging / shard_name(part, parts), folder / shard_name(part, parts))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


def _characters(strings: pa.StringArray) -> memoryview:
    """The characters of an Arrow string array's values, one after the other, as stored (no copy)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset: strings.offset + len(strings) + 1]
    return memoryview(strings.buffers()[2])[offsets[0]:offsets[-1]]


def sample(con, table: Table, n: int, seed: int, output: Path) -> int:
    """``n`` rows chosen by the MD5 of the seed and their video_path (the same rows for the same
    seed, whatever the order of the input), in input order."""
    table.require_key()
    source, params = table.rows()
    rank = f"md5_number(concat(?, ':', coalesce({quote(KEY)}, json)))"
    query = (f"SELECT json FROM ({source}) WHERE {rank} <= (SELECT max(h) FROM (SELECT {rank} AS h "
             f"FROM ({source}) ORDER BY h LIMIT ?)) LIMIT ?")
    return write(con, query, [*params, str(seed), str(seed), *params, n, n], output)


def head(con, table: Table, n: int, output: Path) -> int:
    source, params = table.rows()
    return write(con, f"SELECT json FROM ({source}) LIMIT ?", [*params, n], output)
