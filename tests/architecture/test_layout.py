"""Structural rules of the package, checked on its source: layering, no cycles, no private crossings.

- ``import latent_graph.engine`` pulls in neither LangChain nor LangGraph;
- the import graph of ``latent_graph`` (every import, lazy and TYPE_CHECKING ones too) has no cycle;
- no module imports an underscore name from another subpackage;
- outside ``latent_graph/engine`` engine names come only from ``latent_graph.engine`` itself, never a submodule;
- no module reads LangGraph internals (``graph.builder``, ``.runnable.func``) or glues attributes onto graphs;
- every module stays short and says what it is for in a docstring.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from latent_graph.errors import InvalidArgumentError, ModelMismatchError

PKG = Path(__file__).resolve().parents[2] / "latent_graph"


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
    code = (
        "import sys, latent_graph.engine, latent_graph; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'langgraph', 'langchain')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing the engine pulled in: {out}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in _imports(m, f) if t in MODULES and t != m} for m, f in MODULES.items()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
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


def test_outside_the_engine_only_its_package_is_imported() -> None:
    """Upper layers see one engine surface (``from latent_graph.engine import X``); its rooms may move freely."""
    bad = []
    for m, f in MODULES.items():
        if m == "latent_graph.engine" or m.startswith("latent_graph.engine."):
            continue
        for target, _ in _imports(m, f):
            if target.startswith("latent_graph.engine."):
                bad.append(f"{m} imports {target}")
    assert not bad, bad


def test_rule_sees_an_engine_submodule_import(tmp_path) -> None:
    """The rule above is not vacuous: a submodule import is what :func:`_imports` reports."""
    fake = tmp_path / "x.py"
    fake.write_text("from latent_graph.engine.forward.work import Work\nfrom latent_graph.engine import LatentHandle\n")
    targets = [t for t, _ in _imports("latent_graph.nodes.x", fake)]
    assert "latent_graph.engine.forward.work" in targets and "latent_graph.engine" in targets


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
    assert len(text.splitlines()) <= 450, f"{path.name} has {len(text.splitlines())} lines"
    if text.strip():
        assert ast.get_docstring(ast.parse(text)), f"{module} has no module docstring"


# ------------------------------------------------------------------ issue 17: the card's layout, seams, owners
def test_card_layout_names_and_no_training_code_on_import() -> None:
    code = (
        "import sys, latent_graph.nodes as n, latent_graph.graphs as g\n"
        "names = ['LatentAgentNode', 'JudgerNode', 'TextAgentNode']\n"
        "assert all(hasattr(n, x) for x in names), names\n"
        "assert all(hasattr(g, x) for x in ['build_sequential', 'build_hierarchical', 'build_compact'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('latent_graph.adapters', 'latent_graph.bench'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing nodes/graphs loaded training or bench code: {out}"


def test_nodes_type_against_the_declared_model_protocol(llama) -> None:
    from latent_graph.engine import LatentModel
    from latent_graph.nodes import LatentAgentNode
    from latent_graph.nodes.model_kind import engine_of

    assert isinstance(llama, LatentModel)
    assert engine_of(llama) is llama and LatentAgentNode(model=llama, name="a", instruction="x").model is llama
    with pytest.raises(InvalidArgumentError, match="LatentModel"):
        LatentAgentNode(model=object(), name="a", instruction="x")  # neither a latent nor a chat model


def test_no_hidden_model_registry(llama) -> None:
    """A latent handle reaching a foreign chat model needs the model passed explicitly, not a global lookup."""
    from langchain_core.language_models import FakeListChatModel

    from latent_graph.nodes import TextAgentNode

    node = TextAgentNode(model=FakeListChatModel(responses=["r"]), name="reviewer", instruction="Review.")
    h = llama.think(None, "Plan.", 1, agent="planner")
    with pytest.raises(ModelMismatchError, match="handoff_model"):
        node({"questions": ["q"], "handle": h})
    ok = TextAgentNode(
        model=FakeListChatModel(responses=["r"]), name="reviewer", instruction="Review.", handoff_model=llama
    )
    assert ok({"questions": ["q"], "handle": h})["transcript"][-1]["texts"] == ["r"]


def test_graph_options_have_one_owner() -> None:
    """Every GraphOptions field is a CLI flag with the owner's default and choices; serve reads the same defaults."""
    import dataclasses

    from latent_graph.cli import make_parser
    from latent_graph.engine import REALIGNERS
    from latent_graph.graphs import DEFAULT_GRAPH, GRAPHS, GraphOptions
    from latent_graph.graphs.roles import ANSWER_FORMATS

    args = make_parser().parse_args(["run", "q"])
    fields = dataclasses.fields(GraphOptions)
    assert {f.name: getattr(args, f.name) for f in fields} == {f.name: f.default for f in fields}
    task = next(a for a in make_parser()._subparsers._group_actions[0].choices["run"]._actions if a.dest == "task")
    assert tuple(task.choices) == tuple(ANSWER_FORMATS)
    help_text = make_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert all(r in help_text for r in REALIGNERS) and DEFAULT_GRAPH in GRAPHS
    from latent_graph.serve.config import ServeConfig
    from latent_graph.serve.schema import AnswerRequest, parse, settings_of

    cfg = ServeConfig()
    assert cfg.default_graph == DEFAULT_GRAPH and (cfg.task, cfg.steps) == (GraphOptions.task, GraphOptions.steps)
    served = settings_of(parse(AnswerRequest, {"question": "q"}), cfg).options
    assert served == GraphOptions(max_questions=cfg.max_questions)  # a bare request runs on the owner's defaults


def test_derived_option_declarations_cannot_drift(monkeypatch) -> None:
    """GraphKwargs, the registry's factory keywords and serve's request schema all follow GraphOptions."""
    from typing import TypedDict

    import latent_graph.graphs.base as base
    from latent_graph.graphs import FACTORY_OPTIONS, OPTION_NAMES, GraphKwargs
    from latent_graph.serve.schema import SERVER_OWNED, AnswerRequest

    assert set(base.WIRING) == {
        "edges",
        "judger",
        "checkpointer",
        "store",
        "handle_store",
        "interrupt_after",
        "name",
        "realign",
    }
    assert set(GraphKwargs.__annotations__) == {*OPTION_NAMES, *base.WIRING}
    assert FACTORY_OPTIONS == ("edges", *OPTION_NAMES)
    assert set(AnswerRequest.model_fields) == {"question", "context", "graph", "edges", *OPTION_NAMES} - set(
        SERVER_OWNED
    )
    stale = TypedDict("stale", {k: v for k, v in GraphKwargs.__annotations__.items() if k != "kv_keep"}, total=False)
    monkeypatch.setattr(base, "GraphKwargs", stale)
    with pytest.raises(TypeError, match="kv_keep"):
        base._check_kwargs()  # an option added to GraphOptions alone fails the import of graphs/base.py


def test_a_subcommand_that_cannot_import_is_an_error(monkeypatch) -> None:
    import latent_graph.cli as cli

    monkeypatch.setattr(cli, "COMMAND_GROUPS", {**cli.COMMAND_GROUPS, "broken": ("latent_graph.cli.no_such", "x")})
    with pytest.raises(ImportError):
        cli.make_parser()
    with pytest.raises(ImportError):
        cli.main(["broken"])
    assert "broken" in cli.make_parser("run").format_help()  # listed, not imported, when another command runs


@pytest.mark.integration
def test_default_run_prints_no_warning_and_draws_nothing() -> None:
    """A default run: no warning, no drawing, trace or report built, no bench or training code loaded."""
    code = (
        "import sys, warnings\nwarnings.simplefilter('always')\nfrom latent_graph.cli import main\n"
        "rc = main(['run', '--quiet', '--steps', '1', '--max-new-tokens', '4', 'What is 2 plus 3?'])\n"
        "extra = ('latent_graph.present.draw', 'latent_graph.present.runtrace', 'latent_graph.present.html', "
        "'latent_graph.bench', 'latent_graph.adapters')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(extra)), file=sys.stderr)\nsys.exit(rc)"
    )
    res = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr, res.stderr
    assert "LOADED []" in res.stderr and res.stdout.strip()
