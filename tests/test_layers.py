"""The import rule: a module imports only from its own layer or the layers below it, never from `tests`,
and the module graph has no cycles. Function-level imports count as much as top-level ones (they are
how cycles used to hide). Apache Beam is imported only in `pipelines/`.

The layers, lowest first (ROOTS_LAYERS below) are the rooms of the house; roots/ARCHITECTURE.md
describes what lives in each.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS: tuple[str, ...] = (
    "roots.core",        # errors, schema, util, yamlio, workspace configuration
    "roots.io",          # readers, run tables, spill files
    "roots.governance",  # catalogue, permissions, clearance, takedowns, audit
    "roots.stages",      # the per-document stages and the processor that runs them in order
    "roots.dedup",       # MinHash, dedup row plumbing, cross-source dedup
    "roots.release",     # tokenizer, Megatron format, release segments, fertility
    "roots.report",      # the HTML report, inspect and the data cards
    "pipelines",         # Beam wiring, imported only by the jobs
    "roots.jobs",        # run, re-threshold, merge, publish, LM training
    "roots.cli",         # one module per command group
)


def layer_of(module: str) -> int:
    if module == "roots":  # the package's __init__: the version string and nothing else
        return -1
    if module == "roots.__main__":
        return len(LAYERS)
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} is in no layer; add its folder to LAYERS")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [*sorted((REPO / "roots").rglob("*.py")), *sorted((REPO / "pipelines").rglob("*.py"))]
    return {module_name(p): p for p in files}


def imports_of(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a project module or of tests, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: relative import; use the absolute module name")
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ("roots", "pipelines", "tests"):
                found.append((node.lineno, name))
    return found


MODULES = project_modules()
GRAPH = {mod: imports_of(path, set(MODULES)) for mod, path in MODULES.items()}


def test_every_module_is_in_a_layer() -> None:
    for mod in MODULES:
        layer_of(mod)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_go_down_only(mod: str) -> None:
    here = layer_of(mod)
    bad = []
    for line, target in GRAPH[mod]:
        if target == "tests" or target.startswith("tests."):
            bad.append(f"{MODULES[mod].name}:{line} imports {target} (tests are not shipped)")
        elif target.split(".")[0] in ("roots", "pipelines") and layer_of(target) > here:
            bad.append(f"{MODULES[mod].name}:{line} imports {target}, a higher layer than {LAYERS[here]}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    edges = {mod: sorted({t for _, t in deps if t in MODULES and t != mod}) for mod, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        stack.append(mod)
        for nxt in edges[mod]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[mod] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod)


def test_beam_only_in_pipelines() -> None:
    offenders = []
    for mod, path in MODULES.items():
        if mod.startswith("pipelines"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "apache_beam"]
    assert not offenders, "apache_beam imported outside pipelines/: " + ", ".join(offenders)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an upward function-level import and a `tests` import are both found."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from roots.jobs import run\n    import tests.conftest\n")
    found = imports_of(src, set(MODULES))
    assert (2, "roots.jobs.run") in found and (3, "tests.conftest") in found
    assert layer_of("roots.jobs.run") > layer_of("roots.stages.quality")
