"""The whole pipeline: raw videos in VIDEO_FOLDER -> clips, scores and train.json in OUTPUT_FOLDER.

    bash run_pipeline.sh                                       settings from the environment
    bash run_pipeline.sh --config pipeline.yaml [--check]      or from one YAML (or JSON) file
    python -m video_caption.pipeline [--config FILE] [--check]  (the same)

Every setting of the stage scripts is read the same way here (each script's --help lists them; the
README's tables too).  In a config file the keys are the environment variables in lower case: a setting
one stage reads goes in that stage's section (stage_1, stage_2, stage_3), one that several read
(output_folder, device, num_workers, cpu ...) at the top, next to stages.  Comma lists are YAML lists,
switches true or false (or 1/0, yes/no, on/off); configs/pipeline.example.yaml shows every stage.  An
environment variable that is set wins over the file, and the log says so.

Before any work: every value is checked by its type, a variable that looks like a misspelt setting
stops the run naming the one meant, STAGES runs in the pipeline's order (1, 2, 3; each once), a
VIDEO_FOLDER that is not there is refused, and every model the stages will need is looked for (a
missing one stops the run, or with SKIP_MISSING_MODELS on is listed as skipped).  Each problem is one
line, exit 1, and nothing is created.  The effective settings (the file's, the environment's, the
stages' defaults) are saved as OUTPUT_FOLDER/pipeline_config.yaml; --config that file reruns them.

Then each stage runs in turn.  One that fails outright (exit 1) stops the run; one where some files
failed (exit 2, rows in errors.jsonl) lets the next go on with the rest, and the run exits 2.  Rerunning
the same command resumes: each stage skips what its outputs already hold.  The run ends with its
summary (OUTPUT_FOLDER/summary.json) and the path of its HTML report (OUTPUT_FOLDER/report/index.html).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from video_caption import cli
from video_caption.launch import MODULES, SCHEMA, SCRIPTS, SETTINGS_NOTE, schema
from video_caption.launch import extra_steps as launch_extra
from video_caption.logs import setup_logging
from video_caption.manifest import lock_folder, write_atomic
from video_caption.settings import IGNORE, Schema, Setting, SettingError
from video_caption.steps import StepError

SAVED = "pipeline_config.yaml"
SECTIONS = {f"stage_{n}": n for n in MODULES}


class Dumper(yaml.SafeDumper):
    """Lists on one line, as the example config writes them."""


Dumper.add_representer(list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                                                               flow_style=True))


class ConfigError(Exception):
    """Mistakes found before any work, one line each."""


def keys(where: str | None, schema: Schema = SCHEMA) -> dict[str, Setting]:
    """The settings a config file takes at the top (None) or in a stage's section."""
    return {s.key: s for s in schema.settings if schema.section(s) == where}


def extra_steps(config, environ: dict[str, str]) -> tuple[str, ...]:
    """EXTRA_STEPS from the environment, else the file's (read before the rest: the steps bring settings)."""
    text = environ.get("EXTRA_STEPS")
    if not text and isinstance(config, dict) and isinstance(config.get("stage_2"), dict):
        text = config["stage_2"].get("extra_steps")
    return launch_extra(",".join(map(str, text)) if isinstance(text, list) else str(text or ""))


def config_values(config, schema: Schema = SCHEMA) -> tuple[dict[str, object], list[str]]:
    """A loaded config file's values by environment name, and every mistake in it as 'key: what is
    wrong' (pure)."""
    if not isinstance(config, dict):
        return {}, ["the file must hold a mapping of keys: output_folder: ..., stage_1: {...} ..."]
    values, found = {}, []
    for key, value in config.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                found.append(f"{key}: a mapping of stage {SECTIONS[key]}'s settings, not {value!r}")
                continue
            entries = [(key, sub, v) for sub, v in value.items()]
        else:
            entries = [(None, key, value)]
        for where, sub, v in entries:
            path = f"{where}.{sub}" if where else str(sub)
            setting = keys(where, schema).get(sub)
            if setting is None:
                found.append(f"{path}: unknown key{hint(where, str(sub), schema)}")
            elif v is None:
                found.append(f"{path}: no value: give one, or leave the key out for the default")
            else:
                try:
                    values[setting.env] = setting.kind.from_config(v)
                except SettingError as exc:
                    found.append(f"{path}: {exc}")
    return values, found


def hint(where: str | None, key: str, schema: Schema) -> str:
    for other in (None, *SECTIONS):
        if other != where and key in keys(other, schema):
            return f" here: {key} is {'a top-level key' if other is None else 'a key of ' + other}"
    known = [*keys(where, schema), *([] if where else SECTIONS)]
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_stage(stage: int, argv: list[str]) -> argparse.Namespace:
    """The stage module's own parser on the flags its script would pass (it also checks what depends on
    several settings); its usage error as ConfigError."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return importlib.import_module(f"{MODULES[stage]}.__main__").parse_args(argv)
    except SystemExit:
        message = err.getvalue().strip().split("error: ", 1)[-1]
        raise ConfigError(message.removesuffix(" (--help lists the options)")) from None


class Run:
    """The environment, with a config file or without: checked, then the settings of each stage."""

    def __init__(self, file: Path | None, environ: dict[str, str], log):
        self.file = file
        config = load(file) if file is not None else {}
        try:
            self.schema = schema(extra_steps(config, environ))
        except (SettingError, StepError) as exc:
            raise ConfigError(str(exc)) from None
        given, problems = {}, []
        if file is not None:
            given, found = config_values(config, self.schema)
            problems += [f"{file}: {line}" for line in found]
        problems += self.schema.unknown_names(environ)
        from_env, wrong = self.schema.read_env(None, environ)
        problems += wrong
        if problems:
            raise ConfigError("\n".join(problems))
        for name in sorted(set(from_env) & set(given)):
            log.info("%s = %s from the environment (%s) instead of %s from %s",
                     self.schema.config_path(self.schema.by_env[name]), environ[name], name,
                     self.text(name, given[name]), file)
        self.from_env, self.values = set(from_env), {**given, **from_env}
        self.stages = self.values.get("STAGES", self.schema.by_env["STAGES"].default)
        typed = environ.get("STAGES", "")
        if typed and [int(s) for s in typed.split(",") if s.strip()] != self.stages:
            log.info("STAGES=%s: the stages run in the pipeline's order, %s", typed, " then ".join(map(str,
                                                                                                         self.stages)))
        missing = [s for n in self.stages for s in self.schema.of(n) if s.required and s.env not in self.values]
        if missing:
            raise ConfigError("\n".join(sorted({f"set {s.env} ({self.where(s)}; stage {n} needs it)"
                                                for s in missing for n in self.stages if s in self.schema.of(n)})))
        self.parsed = {n: self.parse(n) for n in self.stages}

    def text(self, name: str, value) -> str:
        return self.schema.by_env[name].kind.to_text(value)

    def where(self, s: Setting) -> str:
        return f"the environment, or {self.schema.config_path(s)} in {self.file}" if self.file else "in the environment"

    def origin(self, s: Setting) -> str:
        if s.env in self.from_env or self.file is None:
            return f"{s.env}={self.text(s.env, self.values[s.env])}"
        return f"{self.file}: {self.schema.config_path(s)}"

    def argv(self, stage: int) -> list[str]:
        return [arg for s in self.schema.of(stage) if s.env in self.values and not s.launcher
                for arg in s.argv(self.values[s.env])]

    def parse(self, stage: int) -> argparse.Namespace:
        try:
            return parse_stage(stage, self.argv(stage))
        except ConfigError as exc:
            named = next((s for s in self.schema.of(stage) if s.flag in str(exc) and s.env in self.values), None)
            raise ConfigError(f"{self.origin(named)}: {exc}" if named else f"the settings of stage {stage}: {exc}") \
                from None

    def env(self, environ: dict[str, str]) -> dict[str, str]:
        """The environment the stages run in: every value given, as text."""
        return {**environ, **{name: self.text(name, value) for name, value in self.values.items()}}

    def effective(self) -> dict:
        """The settings of the stages that run, in the config layout: given, else the stage's default."""
        top: dict = {"stages": self.stages}
        sections: dict[str, dict] = {f"stage_{n}": {} for n in self.stages}
        for n in self.stages:
            for s in self.schema.of(n):
                value = self.values.get(s.env, None if s.launcher else getattr(self.parsed[n], s.dest, None))
                if value in (None, ""):
                    continue
                where = self.schema.section(s)
                (sections[where] if where else top).setdefault(s.key, value)
        return {**top, **sections}


def load(file: Path):
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{file}: cannot read it as YAML or JSON: {getattr(exc, 'problem', exc)}{where}") from None


def missing_models(run: Run) -> list[str]:
    """'stage N, step: why' for every step of the stages to run whose model is not on this machine."""
    found = []
    for n in (2, 3):
        if n in run.stages:
            module = importlib.import_module(f"{MODULES[n]}.__main__")
            found += [f"stage {n}, {miss['step']}: {miss['reason']}" for miss in module.missing_models(run.parsed[n])]
    return found


def check_models(run: Run, env: dict[str, str], log) -> None:
    """Every model the stages need, looked for once for the whole run, before stage 1."""
    if not {2, 3} & set(run.stages):
        return
    from video_caption.models import hub_reachable

    missing = missing_models(run)
    if hub_reachable.cache_info().currsize and not hub_reachable():  # asked, and said once: the stages skip it
        env["HF_HUB_OFFLINE"] = "1"
    if missing and not run.values.get("SKIP_MISSING_MODELS"):
        raise ConfigError("\n".join([*missing, "fetch the models above, leave their steps out (SCORERS, STEPS), or "
                                               "set SKIP_MISSING_MODELS=1 to run without them"]))
    for line in missing:
        log.warning("will be skipped (SKIP_MISSING_MODELS): %s", line)


def dump(config: dict) -> str:
    return yaml.dump(config, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def save(run: Run, folder: Path) -> Path:
    source = run.file or "the environment"
    overridden = sorted(run.from_env) if run.file else []
    header = [f"# The settings of the run started {time.strftime('%Y-%m-%d %H:%M:%S')} from {source}:",
              "# the file's, the environment's where one was set"
              f"{' (' + ', '.join(overridden) + ')' if overridden else ''}, else the stages' defaults.",
              f"# From the same folder (paths may be relative), bash run_pipeline.sh --config {folder / SAVED}",
              "# runs them again."]
    write_atomic(folder / SAVED, ("\n".join(header) + "\n" + dump(run.effective())).encode())
    return folder / SAVED


def run_stages(run: Run, env: dict[str, str]) -> int:
    out = run.values["OUTPUT_FOLDER"]
    started, status = time.time(), 0
    for n in run.stages:
        print(f"=== stage {n}: {SCRIPTS[n]}", file=sys.stderr, flush=True)
        proc = subprocess.Popen([sys.executable, "-m", "video_caption.launch", str(n)], env=env)
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.wait()  # the stage had the same Ctrl-C and says how to resume
            return 130
        if rc == 2:
            status = 2
        elif rc != 0:
            print(f"stage {n} failed (exit {rc}); later stages not run. Fix the error above and rerun: finished "
                  "work is kept.", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "video_caption.summary", "--output-folder", out, "--since",
                            str(started)], env=env, stdout=sys.stderr)
            return rc
    print(f"=== report ({out}/report)", file=sys.stderr, flush=True)
    # The report only shows what the stages wrote: a report that cannot be built changes no exit status.
    report = subprocess.run([sys.executable, "-m", "video_caption.report", "--output-folder", out], env=env,
                            stdout=subprocess.PIPE, text=True)
    print(f"=== summary of this run ({out}/summary.json)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "video_caption.summary", "--output-folder", out, "--since", str(started)],
                   env=env, stdout=sys.stderr)
    built = report.returncode == 0 and report.stdout.strip()
    print(f"report: {report.stdout.strip()} (open it in a browser; it needs no network)" if built else
          "report: not built (the error is above)", file=sys.stderr)
    return status


def help_text() -> str:
    stages = ", ".join(f"bash {SCRIPTS[n]} --help" for n in MODULES)
    return (f"{__doc__}\n{SETTINGS_NOTE}\nRun in the environment {IGNORE} names are never taken for a setting.\n\n"
            f"{SCHEMA.help_text(0)}\nEvery stage's own settings: {stages}.\n")


def main(argv=None) -> int:
    p = cli.Parser("bash run_pipeline.sh (python -m video_caption.pipeline)", help_text())
    p.add_argument("--config", type=Path, help="a YAML or JSON settings file")
    p.add_argument("--check", action="store_true",
                   help="check the settings and print the effective ones; run nothing, write nothing")
    args = p.parse_args(argv)
    log = setup_logging()
    try:
        run = Run(args.config, dict(os.environ), log)
        if args.check:
            print(dump(run.effective()), end="")
            return 0
        env = run.env(dict(os.environ))
        check_models(run, env, log)
    except ConfigError as exc:
        print("\n".join(f"error: {line.removeprefix('error: ')}" for line in str(exc).splitlines()), file=sys.stderr)
        print("error: nothing was run; fix the settings above (--help lists them)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(cli.INTERRUPTED, file=sys.stderr)
        return 130
    out = cli.output_folder(run.values["OUTPUT_FOLDER"])
    with lock_folder(out, "run_pipeline.sh"):  # never the settings file of a run going on there
        log.info("settings checked; saved in %s", save(run, out))
    return run_stages(run, env)


if __name__ == "__main__":
    sys.exit(main())
