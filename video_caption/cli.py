"""What every entry point shares: its argument parser, its exit codes, and one line per foreseeable error.

Exit codes mean one thing in every stage and in run_pipeline.sh: 0 done, 2 some files failed (rows in
errors.jsonl; the next stage goes on with the rest), 1 nothing could be done as asked (a usage or
configuration error, a missing model, a full disk): the pipeline stops there.  argparse's own code
for a usage error is 2, so the parser here exits 1 instead.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from video_caption.manifest import ManifestError, is_storage_error

INTERRUPTED = "interrupted; rerun the same command to resume (finished work is kept)"


class Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, doc: str | None):
        super().__init__(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message: str):
        self.exit(1, f"{self.prog}: error: {message} (--help lists the options)\n")


def output_folder(path: str) -> Path:
    """The output folder, made if needed; one clear line when that cannot be."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SystemExit(f"error: the output folder {folder} is a file, not a folder: give a folder "
                         "(OUTPUT_FOLDER / --output-folder)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def entry_point(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main`` so that foreseeable failures end in one line and exit 1, not a traceback:
    an output folder that cannot be written (full disk, read-only: appends are all-or-nothing and
    clips are renamed into place only when complete, so the rerun after freeing space resumes with
    nothing lost), a file that cannot be opened, a damaged manifest line.  Ctrl-C ends in one line too
    and exit 130, as a shell reports a command killed by SIGINT (the worker processes ignore it: this
    process stops them)."""

    @functools.wraps(main)
    def guarded(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        except ManifestError as exc:
            raise SystemExit(f"error: {exc}") from None
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            if is_storage_error(exc):
                raise SystemExit(f"cannot write{where}: {exc.strerror or exc}. Free space or make the output "
                                 "folder writable, then rerun the same command: every finished row and clip is "
                                 "kept.") from None
            if exc.filename is None:
                raise
            raise SystemExit(f"error: cannot use{where}: {exc.strerror or exc}") from None

    return guarded
