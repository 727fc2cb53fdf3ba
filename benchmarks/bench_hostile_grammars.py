"""Hostile decoding constraints and inputs (issue 32 items 5, 6): time and peak RSS growth until the named error.

For each case of ``tests/adversarial/test_hostile_grammars.py`` the hostile input is built first (the attacker's
own cost, not counted), then ``Compiler.compile`` is timed and the process RSS is sampled every millisecond for
its peak. Also prints the compile time of the largest constraints the default limits let through (the worst
legitimate cost). The default model's tokenizer is used when the embedded model is installed (its 49k vocabulary
is what compile time scales with), else the tests' tiny one. Last, the engine caps and tool limits on a tiny
model (the refusals come before any model work): 10^4 prompts, a 10 MB prompt, a 10 MB tool result.

Usage: python benchmarks/bench_hostile_grammars.py
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "adversarial"))

from test_hostile_grammars import HOSTILE, deep_schema  # noqa: E402

from latent_graph.engine.decode.constrain import Compiler, Constraint  # noqa: E402
from latent_graph.engine.options import GrammarLimits  # noqa: E402
from latent_graph.errors import LatentGraphError  # noqa: E402


def tokenizer():
    try:
        from transformers import AutoTokenizer

        from latent_graph.engine.load.embedded import converted_dir

        path = converted_dir()
        if (path / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(str(path)), "SmolLM2-135M (default model)"
    except Exception:  # noqa: BLE001 - fall back to the tiny tokenizer
        pass
    from conftest import make_tokenizer

    return make_tokenizer(), "tiny test tokenizer"


def measure(fn):
    """(seconds, peak RSS growth in MB, outcome) of ``fn()``."""
    proc = psutil.Process(os.getpid())
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        fn()
        outcome = "compiled"
    except LatentGraphError as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
    elapsed = time.perf_counter() - t0
    done.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return elapsed, (peak[0] - base) / 2**20, outcome


def main() -> None:
    tok, which = tokenizer()
    comp = Compiler(tok, len(tok), [tok.eos_token_id or 0])
    print(f"tokenizer: {which}; load average {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"{'hostile case':40s} {'seconds':>8s} {'+MB peak':>9s}  outcome")
    for case in sorted(HOSTILE):
        c = HOSTILE[case]() if case != "schema nested 2,000 levels" else None
        if c is None:  # the refusal of this one comes at construction (json.dumps), so time construction too
            elapsed, grown, outcome = measure(lambda: comp.compile(Constraint.json_schema(deep_schema(2000))))
        else:
            elapsed, grown, outcome = measure(lambda c=c: comp.compile(c))
        print(f"{case:40s} {elapsed:8.4f} {grown:9.1f}  {outcome}")
    limits = GrammarLimits()
    at_limit = {
        f"schema depth {limits.max_depth} (JSON nesting)": Constraint.json_schema(deep_schema(limits.max_depth // 3)),
        f"enum of {limits.max_enum}": Constraint.json_schema({"enum": [f"v{i}" for i in range(limits.max_enum)]}),
        f"{limits.max_properties} properties": Constraint.json_schema(
            {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(limits.max_properties)}}
        ),
        f"regex of {limits.max_regex_chars} chars": Constraint.regex(
            "(" + "|".join(f"w{i:03d}" for i in range(limits.max_regex_chars // 5)) + ")"
        ),
        f"EBNF of {limits.max_ebnf_rules} rules": Constraint.ebnf(
            "root ::= r0\n"
            + "\n".join(f'r{i} ::= "x" r{i + 1} | "y"' for i in range(limits.max_ebnf_rules - 2))
            + f'\nr{limits.max_ebnf_rules - 2} ::= "z"'
        ),
        f"literal of {limits.max_literal_chars} chars": Constraint.text("ab" * (limits.max_literal_chars // 2)),
    }
    print(f"\n{'largest allowed by the defaults':40s} {'seconds':>8s} {'+MB peak':>9s}  outcome")
    for case, c in at_limit.items():
        elapsed, grown, outcome = measure(lambda c=c: comp.compile(c))
        print(f"{case:40s} {elapsed:8.4f} {grown:9.1f}  {outcome}")

    inputs()


def inputs() -> None:
    from latent_graph.nodes import ToolLimits
    from latent_graph.nodes.toolbox import Toolbox

    from conftest import make_model

    model = make_model("llama")
    call = model.decode(None, "Call a tool.", max_new_tokens=2)
    huge = "x" * 10_000_000

    def dump(x: int) -> str:
        """Returns 10 MB."""
        return huge

    box = Toolbox([dump], limits=ToolLimits())

    def tool_run() -> None:
        (out,) = box.run([{"name": "dump", "arguments": {"x": 1}, "id": "1"}])
        if out.error is not None:
            raise out.kind(out.error)

    cases = {
        "think(10^4 prompts)": lambda: model.think(None, ["What is 2+2?"] * 10**4, steps=2),
        "think(10 MB prompt)": lambda: model.think(None, huge, steps=2),
        "decode_after_tools(10 MB result)": lambda: model.decode_after_tools(call.handle, [[huge]]),
        "Toolbox.run(tool returning 10 MB)": tool_run,
    }
    print(f"\n{'hostile input (tiny model)':40s} {'seconds':>8s} {'+MB peak':>9s}  outcome")
    for case, fn in cases.items():
        elapsed, grown, outcome = measure(fn)
        print(f"{case:40s} {elapsed:8.4f} {grown:9.1f}  {outcome}")


if __name__ == "__main__":
    main()
