"""Re-filter, merge, compare, shard, sample and look at curated data, without rerunning a stage.

    python -m video_caption.datautil COMMAND --help

INPUT is a manifest (JSONL) or an output folder.  A folder's rows are its clip manifest (train.jsonl if
present, else meta_clips.jsonl; filter and stats --all: meta_clips.jsonl, every clip, those stage 2
rejected too) left-joined on video_path with every step file present, each column taken from the
first file that has it, the *_settings columns left out.  The step files are those the steps declare
(and a user's steps', as summary.json records them):
{files}
A manifest's rows are written out exactly as they were read; columns are found in the first 20,480
rows of each file.  Outputs are JSONL, replaced atomically.  DuckDB does the work, spilling to
$TMPDIR past 1 GB of memory.
Exit status: 0 done, 2 some files could not be probed (info: their rows say why), 1 nothing done (a bad
expression, an unknown column, a missing input: one line says which).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

import duckdb

from video_caption.cli import Parser, entry_point
from video_caption.datautil import stats as stats_module
from video_caption.datautil.expr import FORMS, ExpressionError, parse
from video_caption.datautil.info import info_rows, targets
from video_caption.datautil.tables import (
    InputError,
    connect,
    filter_rows,
    head,
    keyed,
    merge,
    open_table,
    sample,
    shard,
    shard_name,
)
from video_caption.folder import step_files
from video_caption.manifest import KEY, TRAIN_JSON, read_rows, rewrite

PROG = "python -m video_caption.datautil"
DOC = __doc__.format(files=textwrap.fill(", ".join(step_files({}).values()), 100, initial_indent="  ",
                                         subsequent_indent="  "))
INPUT_HELP = "a manifest (.jsonl) or an output folder"
OUTPUT_HELP = "the JSONL file to write"
ALL_HELP = ("an output folder's every clip (meta_clips.jsonl) with its scores, those stage 2 rejected too, "
            "not only train.jsonl's survivors")
FORMATS = ("opensora", "mindone", "easyanimate", "parquet", "webdataset")
IMPORT_FORMATS = ("opensora", "panda70m")
EXAMPLES = {
    "filter": f"""examples:
  {PROG} filter OUT --where 'aesthetic_score>=5' --where 'motion_score<8' --output OUT/strict.jsonl
  {PROG} filter OUT/train.jsonl --where 'category in (street,nature)' --output outdoors.jsonl
  {PROG} filter meta_clips.jsonl --where 'num_frames>=48' --where 'category != "text slide"' --output long.jsonl
  {PROG} filter OUT --all --where 'motion_score>=1' --output looser.jsonl   # stage 2's rejects too
Expressions: {FORMS}; several --where must all hold.  A value with a comma, quote or
parenthesis is quoted ('...' or "...").  Numbers compare as numbers, text as text, true/false columns
take true or false.  A row without the column (or with null there) matches nothing.""",
    "merge": f"""examples:
  {PROG} merge node0/train.jsonl node1/train.jsonl node2/train.jsonl --output all.jsonl
  {PROG} merge old.jsonl rescored.jsonl --output current.jsonl   # rescored rows replace old ones
One row per video_path: where several inputs have it, the row of the last of them wins.""",
    "difference": f"""examples:
  {PROG} difference OUT/train.jsonl trained_on.jsonl --output new.jsonl
The rows of A whose video_path is not in B.""",
    "intersection": f"""examples:
  {PROG} intersection OUT/train.jsonl other/train.jsonl --output both.jsonl
The rows of A whose video_path is also in B.""",
    "shard": f"""examples:
  {PROG} shard OUT/train.jsonl --parts 8 --output-folder shards/
Writes DIR/part-00000-of-00008.jsonl ...: each row goes to the part given by the MD5 of its
video_path, so a rerun (on any machine) deals the same rows to the same parts.""",
    "sample": f"""examples:
  {PROG} sample OUT/train.jsonl --n 1000 --seed 7 --output sample.jsonl
The rows with the N smallest MD5 of seed and video_path, in input order: the same seed picks the
same rows, whatever the order of the input.""",
    "head": f"""examples:
  {PROG} head OUT/train.jsonl --n 20 --output first.jsonl""",
    "materialize": f"""examples:
  {PROG} materialize --output-folder OUT
  {PROG} materialize --output-folder OUT --input OUT/strict.jsonl
For a folder stage 1 made with CLIPS=deferred (no clip files): encode the clips of train.json that
have no file yet (or of --input, any manifest of the folder's clips) into clips/, frame-exact, with
the encoder settings stage 1 was given, as stage 3's materialize step does.  train.json's entries
of the clips made lose their pending source fields; a clip that cannot be made (its source gone)
is an errors.jsonl row and is left out of train.json.  Rerunning resumes (materialized.jsonl).
Exit status 2 when some clip could not be made.""",
    "stats": f"""examples:
  {PROG} stats OUT
  {PROG} stats OUT/train.jsonl --json > stats.json
  {PROG} stats OUT --all    # every clip stage 2 saw, not only its survivors
Rows, hours of footage (sum of duration), per number column its count, min, 5/25/50/75/95 %
quantiles and max, counts of each value of the true/false columns and of the label columns
({', '.join(stats_module.LABELS)}), and for a folder its gate_decisions.jsonl summed
by step and gate.""",
    "info": f"""examples:
  {PROG} info /data/raw --output raw_info.jsonl
  {PROG} info a.mp4 b.mkv --fmin 48
  {PROG} info OUT/meta_clips.jsonl --root OUT --output clips_info.jsonl
Rows: video_path, fps, num_frames, duration, width, height, rotation, codec, start_time,
variable_frame_rate; a file that cannot be probed is a row with video_path and error (exit status 2).""",
    "export": f"""examples:
  {PROG} export --output-folder OUT --format opensora --output opensora.csv   # or opensora.parquet
  {PROG} export --output-folder OUT --format mindone --output /data/mindone/meta.csv
  {PROG} export --output-folder OUT --format parquet --output train.parquet --input OUT/strict.jsonl
  {PROG} export --output-folder OUT --format webdataset --output shards/
Score columns no clip has a value in are left out of opensora's and mindone's CSVs; camera labels outside
Open-Sora's seven are written static.  mindone: beside the CSV, a folder of the same name less .csv
(no dot in its path) holds a link to each clip and its caption (<link less .mp4>.json), where mindone
looks.  parquet: the same columns and types for any data (every declared field, then extra, a JSON
object of the rest).  Nothing to write (no clip, none under --root, none captioned for easyanimate)
is an error saying what to pass; exit status 1.""",
    "import": f"""examples:
  {PROG} import opensora.csv --output-folder OUT --stage 3
  {PROG} import clips.txt --output-folder OUT --relative-to-file
  {PROG} import --format panda70m panda70m_training_2m.csv --videos downloads/ --output-folder OUT
Writes OUT/meta_clips.jsonl (stage 2's input: every clip, with the file's columns under our names)
and, with --stage 3, OUT/train.jsonl (stage 3's input) and OUT/train.json (the captions the file
gives, as they are: export takes them).  A relative path is relative to the working folder, as
Open-Sora's tools open it (--relative-to-file: to the file's folder).  When the clips lie outside
OUT, video_path is written relative to / and the log says to run the stages and export with --root /.
panda70m: one row per video (videoID, url, timestamp: its clips' [start, end] times, caption and
matching_score lists), its video found in --videos as <videoID>.<ext> or yt-dlp's '<title> [<videoID>].<ext>';
each clip a deferred clip (a source range, as stage 1 CLIPS=deferred writes: stages 2 and 3 read
its frames from the video, stage 3's materialize encodes those that pass) with panda_caption,
panda_matching_score and panda_url kept.  A missing video or a row that cannot be parsed is an
errors.jsonl row; the rest is imported.  Importing the same file again is a no-op.""",
}


class Command(argparse.ArgumentParser):
    """A subcommand's parser: a usage error exits 1, as with the project's Parser."""

    error = Parser.error


def at_least(minimum: int):
    def parse_count(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    parse_count.__name__ = "number"  # argparse names the type in its message
    return parse_count


def parser() -> Parser:
    p = Parser(PROG, DOC)
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Command)

    def command(name: str, doc: str) -> Parser:
        return commands.add_parser(name, help=doc, description=doc, epilog=EXAMPLES[name],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    c = command("filter", "keep the rows matching every --where expression")
    c.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    c.add_argument("--where", action="append", required=True, metavar="EXPR", type=where,
                   help="a condition rows must meet (repeat for more: all must hold)")
    c.add_argument("--all", action="store_true", help=ALL_HELP)
    c.add_argument("--output", required=True, type=Path, help=OUTPUT_HELP)
    c = command("merge", "the union of manifests, one row per video_path (the later file's row wins)")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUT_HELP + ", in order (the last wins)")
    c.add_argument("--output", required=True, type=Path, help=OUTPUT_HELP)
    for name, doc in (("difference", "the rows of A whose video_path is not in B"),
                      ("intersection", "the rows of A whose video_path is also in B")):
        c = command(name, doc)
        c.add_argument("a", metavar="A", help=INPUT_HELP)
        c.add_argument("b", metavar="B", help=INPUT_HELP)
        c.add_argument("--output", required=True, type=Path, help=OUTPUT_HELP)
    c = command("shard", "split into N parts by video_path, the same on every run")
    c.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    c.add_argument("--parts", required=True, type=at_least(1), metavar="N")
    c.add_argument("--output-folder", required=True, type=Path, metavar="DIR")
    c = command("sample", "N rows chosen at random by a seed, the same for the same seed")
    c.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    c.add_argument("--n", required=True, type=at_least(0), metavar="N")
    c.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    c.add_argument("--output", required=True, type=Path, help=OUTPUT_HELP)
    c = command("head", "the first N rows")
    c.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    c.add_argument("--n", required=True, type=at_least(0), metavar="N")
    c.add_argument("--output", required=True, type=Path, help=OUTPUT_HELP)
    c = command("stats", "rows, hours, number columns' quantiles, label counts, gates")
    c.add_argument("input", metavar="INPUT", help=INPUT_HELP)
    c.add_argument("--all", action="store_true", help=ALL_HELP)
    c.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
    c = command("info", "probe video files: fps, frames, size, duration, codec")
    c.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="video files, folders (searched recursively) or manifests (.jsonl)")
    c.add_argument("--root", type=Path, help="folder a manifest's video_path values are relative to (default: the "
                                             "manifest's folder)")
    c.add_argument("--fmin", type=int, help="leave out files with fewer frames")
    c.add_argument("--workers", type=at_least(1), default=os.cpu_count() or 1,
                   help="files probed at once, by threads (default: %(default)s, the CPU count)")
    c.add_argument("--output", type=Path, help="JSONL file (default: standard output)")
    c = command("export", "write an output folder in another tool's format")
    c.add_argument("--output-folder", required=True, type=Path, metavar="OUT")
    c.add_argument("--format", required=True, choices=FORMATS)
    c.add_argument("--output", required=True, type=Path, metavar="PATH",
                   help="opensora: a .csv or .parquet file; mindone: a .csv file; easyanimate: a .json file; "
                        "parquet: a .parquet file; webdataset: a folder or a pattern such as out/train-%%06d.tar")
    c.add_argument("--input", type=Path, metavar="FILE", help="the manifest to export (default: the folder's)")
    c.add_argument("--root", type=Path, help="folder the clips' video_path values are relative to (default: OUT)")
    c = command("materialize", "encode deferred clips (stage 1 CLIPS=deferred) into their files")
    c.add_argument("--output-folder", required=True, type=Path, metavar="OUT")
    c.add_argument("--input", type=Path, metavar="FILE",
                   help="a manifest of the clips to make (default: train.json's clips with no file yet)")
    c.add_argument("--encoders", type=at_least(1), default=2,
                   help="clips of one source encoding at once while it is decoded on (default: %(default)s)")
    c.add_argument("--batch-size", type=at_least(1), default=16, help="clips per batch (default: %(default)s)")
    c = command("import", "make an output folder from another tool's CSV or Panda-70M's metadata")
    c.add_argument("file", type=Path, metavar="FILE", help="an Open-Sora CSV, a list of paths (one a line), or "
                                                          "Panda-70M metadata (--format panda70m)")
    c.add_argument("--output-folder", required=True, type=Path, metavar="OUT")
    c.add_argument("--format", choices=IMPORT_FORMATS, default=IMPORT_FORMATS[0],
                   help="opensora: a CSV with a path column, or a list; panda70m: Panda-70M's metadata CSV "
                        "(default: %(default)s)")
    c.add_argument("--videos", type=Path, metavar="DIR",
                   help="panda70m: the folder of the downloaded videos (<videoID>.mp4 ..., searched recursively)")
    c.add_argument("--stage", type=int, choices=(2, 3), default=2,
                   help="the stage whose input it is: 2 writes meta_clips.jsonl, 3 also train.jsonl and the "
                        "captions in train.json (default: %(default)s)")
    c.add_argument("--relative-to-file", action="store_true",
                   help="relative paths in FILE are relative to its folder (default: to the working folder, "
                        "as Open-Sora reads them)")
    return p


def where(text: str):
    try:
        return parse(text)
    except ExpressionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def said(line: str) -> int:
    print(line, file=sys.stderr)
    return 0


def run(args) -> int:
    if args.command == "info":
        found = targets(args.paths, args.root)
        rows = [row for row in info_rows(found, args.workers)
                if args.fmin is None or "error" in row or row["num_frames"] >= args.fmin]
        if args.output:
            rewrite(args.output, rows)
        else:
            sys.stdout.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        failed = sum("error" in row for row in rows)
        said(f"info: {len(found)} files probed, {failed} unreadable, {len(rows)} rows"
             + (f" in {args.output}" if args.output else ""))
        return 2 if failed else 0
    if args.command == "materialize":
        return materialize(args)
    if args.command in ("export", "import"):
        from video_caption.datautil import formats  # written apart; loaded only when used

        try:
            if args.command == "export":
                count = formats.export(args.output_folder, args.format, args.output, args.input, args.root)
                return said(f"export: {count} clips in {args.output}")
            from video_caption.logs import setup_logging

            setup_logging(False)  # its log says what was written, and which --root the stages need
            made = formats.import_file(args.file, args.output_folder, args.stage, args.format, args.videos,
                                       args.relative_to_file)
            return said(f"import: {made}")
        except (ValueError, FileNotFoundError, FileExistsError) as exc:
            raise InputError(str(exc)) from None
    with connect() as con:
        if args.command == "stats":
            result = stats_module.compute(con, open_table(con, Path(args.input), args.all))
            print(json.dumps(result, indent=1) if args.json else stats_module.text(result))
            return 0
        if args.command == "shard":
            count = shard(con, open_table(con, Path(args.input)), args.parts, args.output_folder)
            return said(f"shard: {count} rows in {args.output_folder}/{shard_name(0, args.parts)} ...")
        if args.command == "merge":
            count = merge(con, [open_table(con, Path(p)) for p in args.inputs], args.output)
        elif args.command in ("difference", "intersection"):
            join = "ANTI" if args.command == "difference" else "SEMI"
            count = keyed(con, open_table(con, Path(args.a)), open_table(con, Path(args.b)), args.output, join)
        else:
            table = open_table(con, Path(args.input), getattr(args, "all", False))
            if args.command == "filter":
                count = filter_rows(con, table, args.where, args.output)
            elif args.command == "sample":
                count = sample(con, table, args.n, args.seed, args.output)
            else:
                count = head(con, table, args.n, args.output)
    return said(f"{args.command}: {count} rows in {args.output}")


def materialize(args) -> int:
    from video_caption.formats.train_json import settle_pending, write_train_json
    from video_caption.logs import setup_logging
    from video_caption.materialize import materialize_folder

    out, log = args.output_folder, setup_logging(False)
    train = out / TRAIN_JSON
    entries = json.loads(train.read_text(encoding="utf-8")) if train.is_file() else None
    if args.input:
        keys = [row[KEY] for row in read_rows(args.input)]
    elif entries is not None:
        keys = [entry["file_path"] for entry in entries if "source_file" in entry]
    else:
        raise InputError(f"no {TRAIN_JSON} in {out}: give the clips to make with --input")
    made, failed = materialize_folder(out, keys, args.batch_size, args.encoders, log)
    if entries is not None and any("source_file" in e and e["file_path"] in made | failed for e in entries):
        write_train_json(train, settle_pending(entries, made, failed))
    said(f"materialize: {len(made)} clips have their file, {len(failed)} could not be made (errors.jsonl)"
         + (f"; {TRAIN_JSON} rewritten" if entries is not None else ""))
    return 2 if failed else 0


@entry_point
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (ExpressionError, InputError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except duckdb.Error as exc:
        raise SystemExit(f"error: {str(exc).splitlines()[0]}") from None


if __name__ == "__main__":
    sys.exit(main())
