"""The settings schema: every setting of the stage scripts, said once.

A ``Setting`` is one environment variable (``MOTION_MIN``), the flag of the stage module it becomes
(``--motion-min``), its config-file key (``motion_min``, in the section of the one stage that reads it,
else at the top), its type, default and one line of help.  The stage scripts (through
``video_caption.launch``), the config runner (``video_caption.pipeline``), every stage module's
parser, each ``--help`` and the README's settings tables all come from here, so a value means the
same whichever way it is given: a switch is on for 1, true, yes or on (any case) and off for 0,
false, no or off, and anything else is refused naming the setting.

Each stage declares its own settings in ``<stage package>/settings.py`` (cheap to import: the checks
run before any model or decoder loads); the ones several stages read are declared here.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

SWITCH_ON = ("1", "true", "yes", "on")
SWITCH_OFF = ("0", "false", "no", "off")
# Names a user may set for something else; VIDEO_CAPTION_IGNORE adds more (see unknown_names).
IGNORE = "VIDEO_CAPTION_IGNORE"
# First words too common to mean "one of ours" on their own (MAX_JOBS, NUM_THREADS, KEEP_...).
GENERIC_WORDS = {"MIN", "MAX", "NUM", "KEEP", "SKIP", "SOURCE", "IMAGE", "FRAME"}
# Names that meant different things in different stages: refused, naming what replaced them.
RENAMED = {
    "MIN_SIDE": "MIN_SOURCE_SIDE (stage 1: skip small sources) or MIN_CLIP_SIDE (stage 2: the size gate)",
    "BATCH_SIZE": "SCORE_BATCH_SIZE (stage 2) or CAPTION_BATCH_SIZE (stage 3)",
    "STALL_TIMEOUT": "SOURCE_STALL_TIMEOUT (stage 1: a source decoding no frame) or CLIP_STALL_TIMEOUT "
                     "(stages 2-3: a clip's frames not read)",
}


class SettingError(argparse.ArgumentTypeError):
    """A value a setting cannot take; the message says what it takes."""


@dataclass(frozen=True)
class Kind:
    """A setting's type: how text (environment, flag) and config-file values become its value."""

    name: str  # as the help says it: "switch", "integer", "one of a, b" ...
    parse: Callable[[str], object]
    from_config: Callable[[object], object]
    to_text: Callable[[object], str] = str


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word in SWITCH_ON:
        return True
    if word in SWITCH_OFF:
        return False
    raise SettingError(f"a switch takes 1/0, true/false, yes/no or on/off (any case), not {text!r}")


def _switch_config(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)):
        return _switch(str(value))
    raise SettingError(f"a switch takes true/false (or 1/0, yes/no, on/off), not {value!r}")


SWITCH = Kind("switch", _switch, _switch_config, lambda v: "1" if v else "0")


def _number(kind: type, what: str, minimum: float | None) -> Kind:
    def parse(text: str):
        try:
            value = kind(text.strip())
        except ValueError:
            raise SettingError(f"{what}, not {text!r}") from None
        if minimum is not None and value < minimum:
            raise SettingError(f"{what} of at least {minimum:g}, not {text.strip()}")
        return value

    def from_config(value):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                (kind is int and isinstance(value, float)):
            raise SettingError(f"{what}, not {value!r}")
        return parse(str(value))

    return Kind(what, parse, from_config, _number_text)


def _number_text(value) -> str:
    """1000.0 as 1000, as a user writes it; other numbers exactly."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def integer(minimum: float | None = 0) -> Kind:
    return _number(int, "an integer", minimum)


def number(minimum: float | None = 0) -> Kind:
    return _number(float, "a number", minimum)


def _scalar_config(what: str) -> Callable[[object], object]:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SettingError(f"{what}, not {value!r}")
        return str(value)

    return check


TEXT = Kind("text", lambda text: text, _scalar_config("a text"))


def choice(options: Iterable[str], refused: dict[str, str] | None = None) -> Kind:
    """One of ``options``; ``refused`` says why some other values are not among them."""
    options, refused = tuple(options), refused or {}
    what = f"one of {', '.join(options)}"

    def parse(text: str) -> str:
        if text.strip() in refused:
            raise SettingError(f"{text.strip()} {refused[text.strip()]}")
        if text.strip() not in options:
            close = difflib.get_close_matches(text.strip(), options, n=1)
            raise SettingError(f"{what}, not {text!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        return text.strip()

    return Kind(what, parse, lambda value: parse(_scalar_config(what)(value)))


def _list_config(parse: Callable[[str], object]) -> Callable[[object], object]:
    def from_config(value):
        if not isinstance(value, list):
            raise SettingError(f"a list, e.g. [{value}]")
        if not value:
            raise SettingError("an empty list: leave the key out for the default")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise SettingError(f"a list of names, not one holding {item!r}")
        return parse(",".join(map(str, value)))

    return from_config


def names(known: Iterable[str] | None = None, allow_none: bool = False) -> Kind:
    """A comma list (spaces allowed), of some of ``known`` when given; ``none`` for the empty list
    where allowed."""
    known = tuple(known) if known is not None else None
    what = f"a comma list of {', '.join(known)}" if known else "a comma list"
    if allow_none:
        what += " (or none)"

    def parse(text: str) -> list[str]:
        if allow_none and text.strip().lower() == "none":
            return []
        chosen = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
        unknown = [name for name in chosen if known is not None and name not in known]
        if unknown:
            close = [difflib.get_close_matches(n, known, n=1) for n in unknown]
            hint = "".join(f" (did you mean {c[0]}?)" for c in close if c)
            raise SettingError(f"unknown {', '.join(map(repr, unknown))} (known: {', '.join(known)}){hint}")
        return chosen

    return Kind(what, parse, _list_config(parse), lambda v: ",".join(v) if v else "none")


def path(exists: bool = True, what: str = "a path") -> Kind:
    """A path as typed (relative to where the command runs); with ``exists``, one that is there.  Model
    weights are looked for by their step instead, whose error says where to get them."""

    def parse(text: str) -> str:
        if exists and not Path(text).exists():
            raise SettingError(f"{what} that exists: there is no {text}")
        return text

    return Kind(what, parse, lambda value: parse(_scalar_config(what)(value)))


WEIGHTS = path(exists=False, what="a weights file")  # its step looks for it, saying where to get it


@dataclass(frozen=True)
class Setting:
    env: str  # the environment variable; the flag and the config key are made from it
    kind: Kind
    default: object = None  # None: off, or worked out at run time (default_text says how)
    help: str = ""
    stages: tuple[int, ...] = ()
    group: str = ""  # the heading it is listed under in --help
    required: bool = False
    default_text: str = ""
    launcher: bool = False  # read by the launcher (ranks) or run_pipeline.sh, not a flag of the stage module
    gate: str = ""  # the step whose gate this setting bounds (what to change when that gate keeps nothing)

    @property
    def key(self) -> str:
        return self.env.lower()

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")

    @property
    def dest(self) -> str:
        return self.env.lower()

    def shown_default(self) -> str:
        if self.default_text:
            return self.default_text
        if self.kind is SWITCH:
            return "on" if self.default else "off"
        if self.default is None:
            return "off"
        return self.kind.to_text(self.default) if self.default != [] else "none"

    def parse_text(self, text: str):
        """A value from the environment or a flag."""
        return self.kind.parse(text)

    def argv(self, value) -> list[str]:
        """The stage module's arguments for ``value``."""
        if self.kind is SWITCH:
            return [self.flag if value else "--no-" + self.flag[2:]]
        return [f"{self.flag}={self.kind.to_text(value)}"]  # '=': a value starting with '-' is not a flag


@dataclass
class Schema:
    """Every setting, by stage (0: the pipeline's own)."""

    settings: list[Setting] = field(default_factory=list)

    def __post_init__(self):
        self.by_env = {s.env: s for s in self.settings}
        assert len(self.by_env) == len(self.settings), "a setting declared twice"

    def of(self, stage: int) -> list[Setting]:
        return [s for s in self.settings if stage in s.stages]

    def gate_settings(self, stage: int, step: str) -> list[str]:
        """The settings that bound ``step``'s gate in ``stage``."""
        return [s.env for s in self.of(stage) if s.gate == step]

    def section(self, setting: Setting) -> str | None:
        """A setting's config section: its stage's when one stage reads it, else None (the top)."""
        return f"stage_{setting.stages[0]}" if len(setting.stages) == 1 and setting.stages[0] else None

    def config_path(self, setting: Setting) -> str:
        where = self.section(setting)
        return f"{where}.{setting.key}" if where else setting.key

    def prefixes(self) -> set[str]:
        """First words several settings share (MOTION_, TEXT_, VLM_ ...): a variable starting with one
        is taken for a misspelt setting."""
        words = [s.env.split("_")[0] for s in self.settings if "_" in s.env]
        return {w + "_" for w in set(words) if words.count(w) > 1 and w not in GENERIC_WORDS}

    def meant(self, name: str) -> str | None:
        """The setting an unknown environment variable most likely meant, None when it looks like none."""
        known = list(self.by_env)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85) if len(name) >= 5 else []
        if close:
            return close[0]
        prefix = next((p for p in self.prefixes() if name.startswith(p)), None)
        if prefix is None:
            return None
        family = [n for n in known if n.startswith(prefix)]
        return (difflib.get_close_matches(name, family, n=1, cutoff=0) or family)[0]

    def unknown_names(self, environ: dict[str, str]) -> list[str]:
        """One line per environment variable that is no setting but looks like one (pure)."""
        ignored = {n.strip() for n in environ.get(IGNORE, "").split(",") if n.strip()}
        found = []
        for name in sorted(environ):
            if name in self.by_env or name in ignored or name.startswith("VIDEO_CAPTION_"):
                continue
            if name in RENAMED:
                found.append(f"{name} is no longer read (it meant different things in different stages): use "
                             f"{RENAMED[name]}")
            elif meant := self.meant(name):
                found.append(f"{name} is not a setting: did you mean {meant}? (if {name} is meant for another "
                             f"program, add it to {IGNORE}, a comma list)")
        return found

    def read_env(self, stage: int | None, environ: dict[str, str]) -> tuple[dict[str, object], list[str]]:
        """The values of ``stage``'s settings (None: every setting) given in ``environ`` (empty means
        unset), and one line per value that is wrong (pure)."""
        values, problems = {}, []
        for s in self.of(stage) if stage is not None else self.settings:
            text = environ.get(s.env, "")
            if text == "":
                continue
            try:
                values[s.env] = s.parse_text(text)
            except SettingError as exc:
                problems.append(f"{s.env}={text}: {exc}")
        return values, problems

    def add_arguments(self, parser: argparse.ArgumentParser, stage: int) -> dict[str, argparse._ArgumentGroup]:
        """The stage module's flags, one per setting of ``stage``, under their groups (returned, by name)."""
        groups: dict[str, argparse._ArgumentGroup] = {}
        for s in self.of(stage):
            if s.launcher:
                continue
            where = groups.get(s.group) or groups.setdefault(s.group, parser.add_argument_group(s.group or None))
            text = f"{s.help} ({s.env}; default: {s.shown_default()})".replace("%", "%%")
            if s.kind is SWITCH:
                where.add_argument(s.flag, dest=s.dest, action=argparse.BooleanOptionalAction,
                                   default=bool(s.default), help=text)
            else:
                where.add_argument(s.flag, dest=s.dest, type=s.parse_text, default=s.default, required=s.required,
                                   metavar=s.env, help=text)
        return groups

    def help_text(self, stage: int) -> str:
        """The settings of ``stage`` as its script's --help lists them."""
        lines, group = [], None
        for s in self.of(stage):
            if s.group != group:
                group = s.group
                lines.append(f"\n{group}:" if group else "")
            need = "required" if s.required else f"default: {s.shown_default()}"
            lines.append(f"  {s.env}  [{s.kind.name}; {need}]\n      {s.help}")
        return "\n".join(lines).lstrip("\n")

    def markdown(self, stage: int) -> str:
        """The README's table of ``stage``'s settings."""
        rows = ["| setting | flag | config key | type | default | what it does |", "|---|---|---|---|---|---|"]
        for s in self.of(stage):
            need = "required" if s.required else s.shown_default()
            flag = "none" if s.launcher else f"`{s.flag}`"
            rows.append(f"| `{s.env}` | {flag} | `{self.config_path(s)}` | {s.kind.name} | {need} | {s.help} |")
        return "\n".join(rows)


def _stages(text: str) -> list[int]:
    given = [part.strip() for part in text.split(",") if part.strip()]
    if not given or any(part not in ("1", "2", "3") for part in given):
        raise SettingError(f"a comma list of the stages to run, some of 1, 2, 3 (e.g. 2,3), not {text!r}")
    twice = sorted({part for part in given if given.count(part) > 1})
    if twice:
        raise SettingError(f"stage {', '.join(twice)} given twice: each stage runs once")
    return sorted(map(int, given))  # the pipeline's order: each stage reads what the one before wrote


def _stages_config(value) -> list[int]:
    if isinstance(value, list) and value and all(type(v) is int and v in (1, 2, 3) for v in value):
        return _stages(",".join(map(str, value)))
    raise SettingError(f"a list of the stages to run, some of 1, 2, 3 (e.g. [2, 3]), not {value!r}")


STAGE_LIST = Kind("stage list", _stages, _stages_config, lambda v: ",".join(map(str, v)))


def _common(env: str, kind: Kind, default=None, help: str = "", stages=(2, 3), group: str = "execution",
            **more) -> Setting:
    return Setting(env, kind, default, help, stages, group, **more)


# The settings several stages read (or the pipeline alone: stage 0), meaning the same in each.
COMMON = [
    _common("STAGES", STAGE_LIST, [1, 2, 3], "the stages run_pipeline.sh runs, in the pipeline's order "
            "(spaces allowed, each once)", stages=(0,), group="pipeline", launcher=True),
    _common("OUTPUT_FOLDER", TEXT, help="the output folder: stage 1 writes clips and manifests there, stages 2 "
            "and 3 read the stage before's and write theirs", stages=(0, 1, 2, 3), group="input", required=True),
    _common("CLIP_MODEL", TEXT, default_text="ViT-L-14", group="CLIP (aesthetic, match, category)",
            help="open_clip model name"),
    _common("CLIP_WEIGHTS", TEXT, default_text="OpenAI's, from the Hugging Face cache",
            group="CLIP (aesthetic, match, category)",
            help="a weights file, or an open_clip pretrained tag looked up in the Hugging Face cache"),
    _common("CLIP_CONFIG", path(what="a JSON file or folder"), group="CLIP (aesthetic, match, category)",
            help="JSON model config (file or folder) for a CLIP open_clip does not know"),
    _common("NUM_WORKERS", integer(), default_text="one per usable core but one, at most 4, at most one per "
            "3 GiB of available memory", help="DataLoader processes decoding frames (0: in the stage's process)"),
    _common("CLIP_STALL_TIMEOUT", number(), 300.0, help="seconds without a decoded batch before the clip being "
            "read is given up as hanging (an errors.jsonl row); 0: wait for ever"),
    _common("DEVICE", TEXT, default_text="this rank's accelerator, else cpu", help="torch device of in-process "
            "models"),
    _common("CPU", SWITCH, False, help="run on CPU even when a GPU is present", stages=(1, 2, 3)),
    _common("SKIP_MISSING_MODELS", SWITCH, False, help="go on without a step whose model is not on this machine "
            "(warned, listed in summary.json) instead of stopping before any work"),
    _common("NUM_PROCESSES", integer(minimum=1), 1, launcher=True, stages=(1, 2, 3),
            help="more than 1: run under 'accelerate launch --multi_gpu --num_processes N' (one per GPU; "
                 "with CPU on, on the CPU)"),
    _common("LAUNCHER", TEXT, launcher=True, stages=(1, 2, 3), help="a whole launcher command instead, e.g. "
            "'accelerate launch --config_file multi_node.yaml'"),
]
