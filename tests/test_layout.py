"""Structural rules of the package, checked on its source: layering, no cycles, no private crossings.

- ``import latent_graph.engine`` pulls in neither LangChain nor LangGraph;
- the import graph of ``latent_graph`` (every import, lazy and TYPE_CHECKING ones too) has no cycle;
- no module imports an underscore name from another subpackage;
- no module reads LangGraph internals (``graph.builder``, ``.runnable.func``) or glues attributes onto graphs;
- every module stays short and says what it is for in a docstring.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "latent_graph"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods[".".join(parts)] = f
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement in the module."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}"
                out.append((full, None) if full in MODULES else (mod, a.name))
    return out


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else ""


def test_engine_imports_neither_langchain_nor_langgraph() -> None:
    code = ("import sys, latent_graph.engine, latent_graph; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'langgraph', 'langchain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing the engine pulled in: {out}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in _imports(m, f) if t in MODULES and t != m} for m, f in MODULES.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_no_private_names_across_subpackages() -> None:
    bad = []
    for m, f in MODULES.items():
        for target, imported in _imports(m, f):
            if not target.startswith("latent_graph") or _subpackage(target) == _subpackage(m):
                continue
            names = [imported] if imported else [target.rsplit(".", 1)[-1]]
            bad += [f"{m} imports {n} from {target}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, bad


INTERNALS = ("builder", "runnable", "latent_edges")  # a compiled graph's builder, a node spec's runnable, old glue


def test_no_langgraph_internals_or_glued_attributes() -> None:
    bad = []
    for m, f in MODULES.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in INTERNALS:
                bad.append(f"{m}:{node.lineno} reads .{node.attr}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "setattr", "hasattr"):
                names = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
                bad += [f"{m}:{node.lineno} {node.func.id}(..., {n!r})" for n in names if n in INTERNALS]
    assert not bad, bad


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short_and_documented(module: str) -> None:
    path = MODULES[module]
    text = path.read_text()
    assert len(text.splitlines()) <= 420, f"{path.name} has {len(text.splitlines())} lines"
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{module} has no module docstring"
