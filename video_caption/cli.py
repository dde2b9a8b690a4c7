"""What every entry point shares: its argument parser, its exit codes, and one line per foreseeable error.

Exit codes mean one thing in every stage and in run_pipeline.sh: 0 done, 2 some files failed (rows in
errors.jsonl; the next stage goes on with the rest), 1 nothing could be done as asked (a usage or
configuration error, a missing model, a full disk): the pipeline stops there.  argparse's own code
for a usage error is 2, so the parser here exits 1 instead.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

from video_caption.manifest import ManifestError, is_storage_error


class Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, doc: str | None):
        super().__init__(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_argument("--check-settings", action="store_true",
                          help="check the settings, then exit 0 without doing anything (run_pipeline.sh checks "
                               "every stage's before the first one starts)")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.check_settings:
            self.exit(0)
        return parsed

    def error(self, message: str):
        self.exit(1, f"{self.prog}: error: {message} (--help lists the options)\n")


def names(known: tuple[str, ...], allow_none: bool = False) -> Callable[[str], list[str]]:
    """An argument type: a comma list of some of ``known`` (or ``none``, when allowed), a typo being a
    usage error."""

    def parse(text: str) -> list[str]:
        if allow_none and text.strip() == "none":
            return []
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
        return chosen

    return parse


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
    nothing lost), a file that cannot be opened, a damaged manifest line."""

    @functools.wraps(main)
    def guarded(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
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
