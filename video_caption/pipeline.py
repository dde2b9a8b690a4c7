"""The whole pipeline from one config file: every stage's settings and switches in YAML (or JSON),
checked before any work, then run by run_pipeline.sh with the environment the file describes.

    python -m video_caption.pipeline --config pipeline.yaml [--check]
    bash run_pipeline.sh --config pipeline.yaml                        (the same)

Keys are the stage scripts' environment variables in lower case.  A setting that one stage script
reads goes in that stage's section (stage_1, stage_2, stage_3); one that several read, meaning the
same in each (output_folder, device, num_workers, cpu ...), at the top, next to stages (the stages to
run, [1, 2, 3] by default).  Comma lists are YAML lists, switches true or false.  The keys come from
the stage scripts themselves, so each script's --help lists them too; configs/pipeline.example.yaml
shows every stage.  Relative paths are relative to where you run the command, as in the environment.

An environment variable that is set wins over the file, and the log says so.  Every key and value is
checked first (values by the stages' own parsers, on the arguments their scripts build): a mistake is
one line naming the key and the file, exit 1, and no stage starts.  The effective settings (the
file's, the environment's, the defaults of the stages that run) are saved as
OUTPUT_FOLDER/pipeline_config.yaml when the run starts; --config that file reruns the same settings.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import io
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from video_caption import cli
from video_caption.logs import setup_logging
from video_caption.manifest import lock_folder, write_atomic

REPO = Path(__file__).resolve().parents[1]  # the stage scripts live next to the package, in the checkout
SCRIPTS = {1: "stage_1_video_cut.sh", 2: "stage_2_filter_data.sh", 3: "stage_3_video_caption.sh"}
SAVED = "pipeline_config.yaml"


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable the scripts read
    flag: str = ""  # the stage module's flag it becomes ("": the script itself reads it)
    boolean: bool = False
    required: bool = False

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


STAGES = Setting("STAGES")  # run_pipeline.sh's own
# Read by the stage scripts without opt/flag, so LIST_SETTINGS cannot report them.
UNLISTED = {1: (Setting("TRANSITIONS", "--transitions", boolean=True),),
            3: (Setting("VLM_SERVE_ARGS", "--vlm-serve-args"), Setting("LLM_SERVE_ARGS", "--llm-serve-args"))}


class Parser(argparse.ArgumentParser):
    error = cli.Parser.error  # a usage error exits 1, as everywhere (2 means: some files failed)


class Dumper(yaml.SafeDumper):
    """Lists on one line, as the example config writes them."""


Dumper.add_representer(list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                                                               flow_style=True))


class ConfigError(Exception):
    """Mistakes found before any work, one line each."""


@dataclass
class Listing:
    settings: list[Setting]
    module: str
    argv: list[str]  # what the script would pass to the module


def listing(stage: int, env: dict[str, str]) -> Listing:
    """What a stage script reads and the command it would run in ``env`` (LIST_SETTINGS, scripts/common.sh)."""
    proc = subprocess.run(["bash", str(REPO / SCRIPTS[stage])], env={**env, "LIST_SETTINGS": "1"},
                          capture_output=True)
    if proc.returncode != 0:
        raise ConfigError(proc.stderr.decode().strip())
    fields = proc.stdout.decode().split("\0")[:-1]
    end = fields.index("run")
    records = [fields[i:i + 3] for i in range(0, end, 3)]  # kind, name, flag
    settings = [Setting(name, flag, kind == "flag", kind == "require") for kind, name, flag in records]
    return Listing(settings + list(UNLISTED.get(stage, ())), fields[end + 1], fields[end + 2:])


@dataclass
class Schema:
    """Where each setting goes in a config file."""

    stages: dict[int, list[Setting]]  # what each stage script reads
    top: dict[str, Setting]
    sections: dict[str, dict[str, Setting]]  # stage_1 ... -> key -> setting

    @classmethod
    def of(cls, stages: dict[int, list[Setting]]) -> Schema:
        readers: dict[str, list[int]] = {}
        first: dict[str, Setting] = {}
        for stage, settings in stages.items():
            for s in settings:
                readers.setdefault(s.name, []).append(stage)
                first.setdefault(s.name, s)
        top = {STAGES.key: STAGES}
        sections: dict[str, dict[str, Setting]] = {section(n): {} for n in stages}
        for name, s in first.items():
            (top if len(readers[name]) > 1 else sections[section(readers[name][0])])[s.key] = s
        return cls(stages, top, sections)

    def keys(self, where: str | None) -> dict[str, Setting]:
        return self.sections[where] if where else self.top

    def path(self, name: str) -> str:
        """A setting's key as written in the file: 'device', 'stage_2.motion_min'."""
        for where in (None, *self.sections):
            if name.lower() in self.keys(where):
                return f"{where}.{name.lower()}" if where else name.lower()
        raise KeyError(name)


def section(stage: int) -> str:
    return f"stage_{stage}"


def read_schema() -> Schema:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # no user setting can stop the listing
    return Schema.of({n: listing(n, clean).settings for n in SCRIPTS})


def check(config, schema: Schema) -> list[str]:
    """Every mistake in a loaded config file, as 'key: what is wrong' (pure)."""
    if not isinstance(config, dict):
        return ["the file must hold a mapping of keys: output_folder: ..., stage_1: {...} ..."]
    found = []
    for key, value in config.items():
        if key in schema.sections:
            if not isinstance(value, dict):
                found.append(f"{key}: a mapping of stage {key[-1]}'s settings, not {value!r}")
                continue
            found += [problem for sub, v in value.items() for problem in check_key(schema, key, sub, v)]
        else:
            found += check_key(schema, None, key, value)
    return found


def check_key(schema: Schema, where: str | None, key, value) -> list[str]:
    path = f"{where}.{key}" if where else str(key)
    setting = schema.keys(where).get(key)
    if setting is None:
        return [f"{path}: unknown key{hint(schema, where, str(key))}"]
    problem = check_value(setting, value)
    return [f"{path}: {problem}"] if problem else []


def hint(schema: Schema, where: str | None, key: str) -> str:
    for other in (None, *schema.sections):
        if other != where and key in schema.keys(other):
            return f" here: {key} is {'a top-level key' if other is None else 'a key of ' + other}"
    known = [*schema.keys(where), *([] if where else schema.sections)]
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_value(setting: Setting, value) -> str | None:
    """What is wrong with one value, None when nothing is (pure)."""
    if value is None:
        return "no value: give one, or leave the key out for the default"
    if setting is STAGES:
        if isinstance(value, list) and value and all(type(v) is int and v in SCRIPTS for v in value):
            return None
        return f"a list of the stages to run, some of 1, 2, 3 (e.g. [2, 3]), not {value!r}"
    if setting.boolean:
        return None if isinstance(value, bool) else f"true or false, not {value!r}"
    if value == []:
        return "an empty list: leave the key out for the default"
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            return f"a number, a text or a list of them, not {item!r}"
        if not isinstance(item, str) and item < 0:
            return f"{item} is negative"
    return None


def given(config: dict, schema: Schema) -> dict[str, object]:
    """A checked config file's values by environment variable (pure)."""
    values = {}
    for key, value in config.items():
        if key in schema.sections:
            values.update({schema.sections[key][k].name: v for k, v in value.items()})
        else:
            values[schema.top[key].name] = value
    return values


def is_list(value) -> bool:
    return isinstance(value, (list, tuple, set))


def env_value(value) -> str:
    """A config value as the scripts read it: switches 1 or 0, lists comma-joined (pure)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(map(env_value, value))
    return str(value)


def scalar(text: str):
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def typed(text: str, parsed):
    """An environment value in the config's types, as the stage's parser read it (pure)."""
    if isinstance(parsed, bool):
        return parsed
    if is_list(parsed):
        return [scalar(t.strip()) for t in text.split(",") if t.strip()]
    return scalar(text)


def plain(parsed):
    """A parsed default as a config value."""
    return sorted(parsed) if isinstance(parsed, set) else list(parsed) if isinstance(parsed, tuple) else parsed


def parse_stage(module: str, argv: list[str]) -> argparse.Namespace:
    """The stage module's own parser on the arguments its script builds; its usage error as ConfigError."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return importlib.import_module(f"{module}.__main__").parse_args(argv)
    except SystemExit:
        raise ConfigError(err.getvalue().strip().split("error: ", 1)[-1]) from None


def culprit(message: str, settings: list[Setting]) -> Setting | None:
    """The setting a stage parser's error is about: the first of its flags the message names."""
    by_flag = {s.flag: s for s in settings if s.flag}
    return next((by_flag[f] for f in re.findall(r"--[a-z][a-z0-9-]*", message) if f in by_flag), None)


class Run:
    """One config file with the environment: checked, then its effective settings."""

    def __init__(self, file: Path, environ: dict[str, str], log):
        self.file = file
        try:
            config = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", exc)
            raise ConfigError(f"{file}: cannot read it as YAML or JSON: {problem}{where}") from None
        self.schema = read_schema()
        found = check(config, self.schema)
        if found:
            raise ConfigError("\n".join(f"{file}: {problem}" for problem in found))
        self.given = given(config, self.schema)
        self.from_env = {name for name in self.names() if environ.get(name)}
        self.env = dict(environ)
        for name in sorted(self.from_env):
            instead = f" instead of {env_value(self.given[name])} from {file}" if name in self.given else ""
            log.info("%s = %s from the environment (%s)%s", self.schema.path(name), environ[name], name, instead)
        self.env.update({name: env_value(v) for name, v in self.given.items() if name not in self.from_env})
        self.stages = self.run_stages()
        self.parsed = {n: self.parse(n) for n in self.stages}

    def names(self) -> list[str]:
        return [s.name for where in (None, *self.schema.sections) for s in self.schema.keys(where).values()]

    def origin(self, name: str) -> str:
        path = self.schema.path(name)
        return f"{path} ({name} from the environment)" if name in self.from_env else f"{self.file}: {path}"

    def run_stages(self) -> list[int]:
        text = self.env.get("STAGES") or ",".join(map(str, SCRIPTS))
        stages = [scalar(s.strip()) for s in text.split(",")]
        if problem := check_value(STAGES, stages):
            raise ConfigError(f"{self.origin('STAGES')}: {problem}")
        return stages

    def parse(self, stage: int) -> argparse.Namespace:
        settings = self.schema.stages[stage]
        missing = [s.name for s in settings if s.required and not self.env.get(s.name)]
        if missing:
            raise ConfigError("\n".join(f"{self.file}: {self.schema.path(name)}: missing (stage {stage} needs it; "
                                        f"or set {name})" for name in missing))
        run = listing(stage, self.env)
        try:
            parsed = parse_stage(run.module, run.argv)
        except ConfigError as exc:
            setting = culprit(str(exc), settings)
            raise ConfigError(f"{self.origin(setting.name)}: {exc}" if setting else
                              f"{self.file}: the settings of stage {stage}: {exc}") from None
        for s in settings:  # comma lists as YAML lists, single values as single values
            value, read = self.given.get(s.name), getattr(parsed, s.dest, None)
            if s.name in self.from_env or value is None or is_list(value) == is_list(read):
                continue
            shape = f"a list, e.g. [{value}]" if is_list(read) else "a single value, not a list"
            raise ConfigError(f"{self.origin(s.name)}: {shape}")
        return parsed

    def effective(self) -> dict:
        """The settings of the stages that run: the environment's, the file's, else the stage's default."""
        top: dict = {"stages": self.stages}
        sections: dict[str, dict] = {section(n): {} for n in self.stages}
        for n in self.stages:
            for s in self.schema.stages[n]:
                read = getattr(self.parsed[n], s.dest, None) if s.flag else None
                if s.name in self.from_env:
                    value = typed(self.env[s.name], read)
                else:
                    value = self.given[s.name] if s.name in self.given else plain(read)
                path = self.schema.path(s.name).split(".")
                into = top if len(path) == 1 else sections[path[0]]
                if value not in (None, ""):
                    into.setdefault(path[-1], value)
        return {**top, **sections}


def dump(config: dict) -> str:
    return yaml.dump(config, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def save(config: dict, folder: Path, source: Path, overridden: set[str]) -> Path:
    header = [f"# The settings of the run started {time.strftime('%Y-%m-%d %H:%M:%S')} from {source}:",
              "# the file's, the environment's where one was set"
              f"{' (' + ', '.join(sorted(overridden)) + ')' if overridden else ''}, else the stages' defaults.",
              f"# From the same folder (paths may be relative), bash run_pipeline.sh --config {folder / SAVED}",
              "# runs them again."]
    write_atomic(folder / SAVED, ("\n".join(header) + "\n" + dump(config)).encode())
    return folder / SAVED


def main(argv=None) -> int:
    p = Parser(prog="python -m video_caption.pipeline", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="the YAML or JSON settings file")
    p.add_argument("--check", action="store_true",
                   help="check the file and print the effective settings; run nothing, write nothing")
    args = p.parse_args(argv)
    log = setup_logging()
    try:
        run = Run(args.config, dict(os.environ), log)
    except ConfigError as exc:
        print("\n".join(f"error: {line.removeprefix('error: ')}" for line in str(exc).splitlines()), file=sys.stderr)
        print("error: nothing was run; fix the settings above", file=sys.stderr)
        return 1
    if args.check:
        print(dump(run.effective()), end="")
        return 0
    out = cli.output_folder(run.env["OUTPUT_FOLDER"])
    with lock_folder(out, "python -m video_caption.pipeline"):  # never the settings file of a run going on there
        log.info("settings checked; saved in %s", save(run.effective(), out, args.config, run.from_env))
    env = {**run.env, "STAGES": ",".join(map(str, run.stages)), "PYTHON": run.env.get("PYTHON") or sys.executable}
    os.execvpe("bash", ["bash", str(REPO / "run_pipeline.sh")], env)


if __name__ == "__main__":
    sys.exit(main())
