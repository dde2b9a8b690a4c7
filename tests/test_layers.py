"""The package's layers, read from its imports (module level and inside functions, absolute and relative).

- No import cycle between the package's modules.
- A stage package (cut/, score/, caption/) imports no other stage, and none of the tools (datautil/,
  report/) nor the launchers (launch.py, pipeline.py).
- The shared modules (everything else: manifest.py, runner.py, media/, formats/, clip.py ...) import no
  stage, no tool and no launcher.
- A tool imports a stage only for its light ``settings.py``.

Importing ``video_caption.X`` where X is a package counts as importing its ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "video_caption"
ROOT = PACKAGE.name
STAGES = ("cut", "score", "caption")
TOOLS = ("datautil", "report")
LAUNCHERS = ("launch", "pipeline")

# Imports the rules refuse that are kept for now: (importer, imported) -> why.
ALLOWED: dict[tuple[str, str], str] = {}


def module_names() -> dict[str, Path]:
    """{dotted name: file} of every module; a package is its ``__init__``."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def resolve(name: str, modules: dict[str, Path]) -> str:
    """The module ``name`` imports: itself, or the package (or module) it names something in."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name, modules) for a in node.names if a.name.split(".")[0] == ROOT}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per dot after the first
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else resolve(base, modules))
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) through each strongly connected component of more than one module
    (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for component in components:  # the shortest way back to the component's first module
        start = min(component)
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            nxt = sorted(graph[path[-1]] & component)
            if start in nxt:
                found.append([*path, start])
                break
            for n in nxt:
                if n not in seen:
                    seen.add(n)
                    paths.append([*path, n])
    return found


def area(name: str) -> tuple[str, str]:
    """(kind, top-level name): kind is stage, tool, launcher or shared."""
    top = name.split(".")[1] if "." in name else ""
    if top in STAGES:
        return "stage", top
    if top in TOOLS:
        return "tool", top
    if top in LAUNCHERS:
        return "launcher", top
    return "shared", top


def broken_rule(importer: str, imported: str) -> str | None:
    (kind, top), (their_kind, their_top) = area(importer), area(imported)
    if kind == "stage" and their_kind == "stage" and their_top != top:
        return "a stage imports another stage"
    if kind == "stage" and their_kind in ("tool", "launcher"):
        return f"a stage imports a {their_kind}"
    if kind == "shared" and their_kind != "shared":
        return f"a shared module imports a {their_kind}"
    if kind == "tool" and their_kind == "stage" and imported != f"{ROOT}.{their_top}.settings":
        return "a tool imports a stage beyond its settings.py"
    return None


def violations(graph: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    return {(a, b): rule for a in graph for b in graph[a] if (rule := broken_rule(a, b))}


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "video_caption.score.flow" in graph["video_caption.score.motion"]
    assert "video_caption.formats.train_json" in graph["video_caption.datautil.__main__"]  # inside a function
    assert "video_caption.caption.backends" in graph["video_caption.caption.roles"]  # a package: its __init__
    assert "video_caption.clip" in graph["video_caption.score.dedup"]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (one through each group of modules importing each other):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


def test_cycles_are_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_stages_shared_modules_and_tools_keep_to_their_layers():
    found = violations(import_graph())
    refused = {pair: rule for pair, rule in found.items() if pair not in ALLOWED}
    assert not refused, "layer violations:\n" + "\n".join(f"{a} imports {b}: {rule}"
                                                             for (a, b), rule in sorted(refused.items()))
    stale = set(ALLOWED) - set(found)
    assert not stale, f"allowances no longer needed (remove them from ALLOWED): {sorted(stale)}"


def test_the_rules():
    assert broken_rule("video_caption.score.motion", "video_caption.caption.match") is not None
    assert broken_rule("video_caption.score.motion", "video_caption.score.flow") is None
    assert broken_rule("video_caption.clip", "video_caption.score.base") is not None
    assert broken_rule("video_caption.formats.train_json", "video_caption.manifest") is None
    assert broken_rule("video_caption.datautil.formats", "video_caption.caption.settings") is None
    assert broken_rule("video_caption.datautil.formats", "video_caption.caption.train_json") is not None
    assert broken_rule("video_caption.caption.__main__", "video_caption.report.collect") is not None
    assert broken_rule("video_caption.launch", "video_caption.cut.settings") is None
