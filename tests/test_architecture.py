"""The layout rules of docs/architecture.md, checked on the source (no imports run).

Every import is counted, lazy ones inside functions included: a cycle that only
closes at run time is still a cycle, and a stage that imports a renderer lazily
still knows its renderer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vmgrade"
MAX_MODULE_LINES = 800
MAX_TOP_LEVEL_MODULES = 20

# The pipeline in data-flow order: a stage imports only stages before it.
STAGE_ORDER = (
    ("vmgrade._version", "vmgrade.errors", "vmgrade.fileio", "vmgrade.timestamps", "vmgrade.csvtable",
     "vmgrade.transcript"),
    ("vmgrade.audio",),
    ("vmgrade.vad",),
    ("vmgrade.calls",),
    ("vmgrade.asr",),
    ("vmgrade.numbers",),
    ("vmgrade.delivery",),
    ("vmgrade.content",),
    ("vmgrade.scoring",),
    ("vmgrade.report",),
    ("vmgrade.pipeline",),
    ("vmgrade.compare", "vmgrade.calibrate"),
)
# Shells and renderers sit around the pipeline; no stage may import them.
OUTER = ("vmgrade.render", "vmgrade.batch", "vmgrade.web", "vmgrade.store", "vmgrade.cli", "vmgrade.__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every vmgrade module ``name`` imports, at any depth of the file."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vmgrade"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("vmgrade"):
                continue
            # "from pkg import sub" imports the submodule; "from pkg import name" the package
            subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES]
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(source)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_stages_import_only_earlier_stages():
    rank = {prefix: i for i, group in enumerate(STAGE_ORDER) for prefix in group}

    def rank_of(module: str) -> int | None:
        hits = [r for p, r in rank.items() if _within(module, [p])]
        return max(hits) if hits else None

    wrong = []
    for module, imported in GRAPH.items():
        mine = rank_of(module)
        if mine is None:
            continue
        for other in imported:
            if _within(other, OUTER):
                wrong.append(f"{module} imports the shell or renderer {other}")
            theirs = rank_of(other)
            if theirs is not None and theirs > mine:
                wrong.append(f"{module} imports the later stage {other}")
    assert not wrong, "\n".join(sorted(wrong))


def test_report_imports_no_renderer():
    assert not {m for m in GRAPH["vmgrade.report"] if _within(m, ["vmgrade.render"])}


def test_modules_stay_readable():
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    long = {name: n for name, n in lines.items() if n > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_top_level_stays_small():
    top = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)
