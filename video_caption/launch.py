"""What a stage script runs: its settings read from the environment through the schema, checked,
then the stage module with them as flags (under a launcher for several ranks).

    python -m video_caption.launch STAGE [flags for the stage module]     (stage_*.sh run this)
    python -m video_caption.launch --readme README.md     the README's settings tables made anew

Before anything starts, every environment variable that is a setting is parsed by its type, one that
looks like a misspelt setting (MOTOIN_MAX, MOTION_MIN_SCORE) is refused naming the setting meant,
and the required ones must be set; each problem is one line, exit 1.  Flags given after the script's
name go to the module after those made from the environment, so a flag wins.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path

from video_caption.caption import settings as caption_settings
from video_caption.cut import settings as cut_settings
from video_caption.score import settings as score_settings
from video_caption.settings import COMMON, Schema, SettingError
from video_caption.steps import StepError


@functools.cache
def schema(extra: tuple[str, ...] = ()) -> Schema:
    """Every setting, with those of the user's steps (EXTRA_STEPS)."""
    steps = score_settings.stage_schema(extra)[1]
    return Schema(COMMON + cut_settings.SETTINGS + score_settings.settings(steps) + caption_settings.settings())


SCHEMA = schema()  # the built-in steps' (the README's tables)
MODULES = {1: "video_caption.cut", 2: "video_caption.score", 3: "video_caption.caption"}
SCRIPTS = {1: "stage_1_video_cut.sh", 2: "stage_2_filter_data.sh", 3: "stage_3_video_caption.sh"}
ABOUT = {1: cut_settings.ABOUT, 2: score_settings.ABOUT, 3: caption_settings.ABOUT}
SETTINGS_NOTE = ("Settings come from the environment (a flag given after the script's name wins; relative paths "
                 "are relative to where you run it).\nA switch is on for 1, true, yes or on and off for 0, false, "
                 "no or off, in any case; lists are comma lists.\nA variable that looks like a misspelt setting "
                 "stops the run: list it in VIDEO_CAPTION_IGNORE if another program reads it.")


def read(stage: int, environ: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """The values of ``stage``'s settings in ``environ``, and every problem found, one line each (pure):
    names that look misspelt, values that are wrong, required settings missing."""
    try:
        found = schema(extra_steps(environ.get("EXTRA_STEPS", "")))
    except (SettingError, StepError) as exc:
        return {}, [str(exc)]
    problems = found.unknown_names(environ)
    values, wrong = found.read_env(stage, environ)
    problems += wrong
    problems += [f"set {s.env} ({s.help}); --help lists every setting" for s in found.of(stage)
                 if s.required and s.env not in values and not any(s.env in line for line in wrong)]
    return values, problems


def extra_steps(text: str) -> tuple[str, ...]:
    """EXTRA_STEPS as given (in the environment or a config file's text), read before the schema that
    depends on it."""
    return tuple(score_settings.EXTRA_STEPS.parse_text(text)) if text else ()


def command(stage: int, values: dict[str, object], flags: list[str]) -> list[str]:
    """The stage's command line: the module with a flag per value, under a launcher for ranks."""
    found = schema(tuple(values.get("EXTRA_STEPS") or ()))
    args = [arg for s in found.of(stage) if s.env in values and not s.launcher for arg in s.argv(values[s.env])]
    module = ["-m", MODULES[stage], *args, *flags]
    if values.get("LAUNCHER"):
        return [*shlex.split(values["LAUNCHER"]), *module]
    if values.get("NUM_PROCESSES", 1) > 1:
        # accelerate's multi-process launcher; with CPU on, the ranks run on CPU (gloo). Its own --cpu flag
        # would start a single process unless MPI is installed.
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                str(values["NUM_PROCESSES"]), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend",
                "no", *module]
    return [sys.executable, *module]


def help_text(stage: int) -> str:
    settings = schema(extra_steps(os.environ.get("EXTRA_STEPS", ""))).help_text(stage)
    return f"{ABOUT[stage]}\n\n{SETTINGS_NOTE}\n\n{settings}\n"


def readme_tables(text: str) -> str:
    """``text`` (the README) with each settings table made anew from the schema (pure): the lines between
    '<!-- settings of stage N -->' and '<!-- end of settings -->'."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("<!-- end of settings -->"):
            skipping = False
        if not skipping:
            out.append(line)
        if line.startswith("<!-- settings of stage "):
            out.append(SCHEMA.markdown(int(line.split()[4])) + "\n")
            skipping = True
    return "".join(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--readme"]:  # for the project's own README: python -m video_caption.launch --readme README.md
        readme = Path(argv[1])
        readme.write_text(readme_tables(readme.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    stage, flags = int(argv[0]), argv[1:]
    if {"-h", "--help"} & set(flags):
        print(help_text(stage))
        print(f"Flags given after the script's name go to 'python -m {MODULES[stage]}':", flush=True)
        os.execv(sys.executable, [sys.executable, "-m", MODULES[stage], "--help"])
    values, problems = read(stage, dict(os.environ))
    if problems:
        print("\n".join(f"error: {line}" for line in problems), file=sys.stderr)
        return 1
    cmd = command(stage, values, flags)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
