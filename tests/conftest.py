"""Shared fixtures: tiny random-weight models built in-process (no downloads), and the OS-tool skips.

A test that needs an OS tool which pip cannot install (bubblewrap, Graphviz ``dot``, Chromium) is marked
``@pytest.mark.needs("bwrap")`` (or ``"dot"``, ``"chromium"``): where the tool is missing or unusable it is
skipped with the reason and the install line, never failed. ``bash scripts/setup.sh`` run as root installs them.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from latent_graph import LocalLatentModel
from latent_graph.errors import LatentGraphError

import pgcluster

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Plan the solution step by step. Check the plan carefully and refine it.",
    "What is 12 times 7? The answer is 84. Alice has 3 apples and buys 5 more.",
    "The secret code is BLUE-42. Answer with the final number in boxed form.",
    "You are a helpful assistant. Critic, planner, refiner, judger, expert.",
] * 4

ARCHS = ["llama", "qwen2", "qwen3", "mistral", "gemma", "gpt2"]


def make_tokenizer(chat_template: str | None = CHATML) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer trained on a fixed corpus (deterministic)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<pad>", "<s>", "<|im_end|>", "<|im_start|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="<|im_end|>")
    fast.chat_template = chat_template
    return fast


def make_config(arch: str, vocab: int, ctx: int = 2048):
    common = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=ctx,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "qwen3":
        return Qwen3Config(head_dim=16, **common)
    if arch == "mistral":
        return MistralConfig(sliding_window=None, **common)
    if arch == "gemma":
        return GemmaConfig(head_dim=16, **{**common, "tie_word_embeddings": True})
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=ctx,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
    raise ValueError(arch)


def make_model(
    arch: str = "llama", seed: int = 0, ctx: int = 2048, chat_template: str | None = CHATML, **kwargs
) -> LocalLatentModel:
    tok = make_tokenizer(chat_template)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(make_config(arch, len(tok), ctx))
    hf.generation_config.eos_token_id = 2
    return LocalLatentModel(hf.eval(), tok, name=f"tiny-{arch}-s{seed}", **kwargs)


@pytest.fixture(scope="session")
def tiny_factory() -> Callable[..., LocalLatentModel]:
    return make_model


@pytest.fixture(scope="session", params=ARCHS)
def any_model(request: pytest.FixtureRequest) -> LocalLatentModel:
    return make_model(request.param)


@pytest.fixture(scope="session")
def llama() -> LocalLatentModel:
    return make_model("llama")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama of :func:`make_model` written as a GGUF file (tests/tinygguf.py)."""
    from tinygguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def llamacpp_tiny(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """The llama.cpp engine on :func:`tiny_gguf` (1 thread); skipped where llama-cpp-python is not installed."""
    pytest.importorskip("llama_cpp", reason="the llama.cpp engine needs the llamacpp extra")
    from latent_graph import LlamaCppLatentModel

    with pytest.MonkeyPatch.context() as mp:  # what the load caches goes to a throwaway folder
        mp.setenv("LATENT_GRAPH_CACHE", str(tmp_path_factory.mktemp("cache")))
        return LlamaCppLatentModel(tiny_gguf, n_threads=1, n_ctx=1024, max_batch=4)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster per test module (tests/pgcluster.py), skipped with the reason where it cannot start."""
    try:
        with pgcluster.start() as url:
            yield url
    except pgcluster.PgUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot start here: {exc}")


@pytest.fixture(scope="session")
def default_model() -> LocalLatentModel:
    """The embedded default model (SmolLM2-135M-Instruct); skips if its wheel is missing."""
    from latent_graph.errors import DefaultModelMissingError

    try:
        return LocalLatentModel.default()
    except DefaultModelMissingError as exc:
        pytest.skip(f"default model not installed: {exc}")


# ------------------------------------------------------------------ OS tools
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
OS_PACKAGES = {"bwrap": "bubblewrap", "dot": "graphviz", "chromium": "chromium chromium-driver"}


def os_tool(tool: str) -> str | None:
    """Path of the executable behind ``tool`` (a key of :data:`OS_PACKAGES`), or None."""
    names = CHROMIUM_NAMES if tool == "chromium" else (tool,)
    return next((path for path in map(shutil.which, names) if path), None)


def _version_problem(exe: str, flag: str) -> str | None:
    try:
        proc = subprocess.run([exe, flag], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{exe} {flag} failed: {exc}"
    if proc.returncode:  # e.g. Ubuntu's chromium-browser stub that only points at the snap
        return f"{exe} {flag} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-200:]}"
    return None


@functools.cache
def os_tool_problem(tool: str) -> str | None:
    """Why ``tool`` cannot be used here (None: it works). Probed once per test session."""
    if tool not in OS_PACKAGES:
        raise ValueError(f"unknown OS tool {tool!r} in @pytest.mark.needs; known: {sorted(OS_PACKAGES)}")
    if tool == "bwrap":  # the sandbox's own probe: installed *and* able to create namespaces
        from latent_graph.bench import sandbox

        return sandbox.bwrap_problem()
    exe = os_tool(tool)
    if exe is None:
        return f"{tool} is not installed"
    return _version_problem(exe, "-V" if tool == "dot" else "--version")


def chromium_screenshot(html: Path, png: Path, profile: Path, size: tuple[int, int]) -> subprocess.CompletedProcess:
    """Render ``html`` in headless Chromium to ``png`` (``size`` = width, height), off the network, in a new profile."""
    cmd = [
        os_tool("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        html.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(tool): the test needs an OS tool (bwrap, dot, chromium); skipped with the reason where it is missing",
    )
    config.addinivalue_line(
        "markers",
        "reliability(kind): an attack, fault or bad_input of the reliability suite, counted in its summary line",
    )


# ------------------------------------------------------------------ the reliability suite's own counts
RELIABILITY = {"attack": "attacks", "fault": "faults", "bad_input": "bad inputs"}
HELD = {"attack": "blocked", "fault": "survived", "bad_input": "named errors"}
RELIABILITY_TALLY: dict[str, dict[str, int]] = {}
"""Per kind: ``tried``, ``held`` (the test passed), ``raw`` (it failed on an exception that is neither a
LatentGraphError nor an assertion), ``skipped``. A test may count several cases: ``record_property("cases", n)``."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    mark = item.get_closest_marker("reliability")
    if mark is None:
        return
    report = outcome.get_result()
    kind = mark.args[0]
    if kind not in RELIABILITY:
        raise ValueError(f"reliability kind {kind!r} is not one of {sorted(RELIABILITY)}")
    tally = RELIABILITY_TALLY.setdefault(kind, dict.fromkeys(["tried", "held", "raw", "skipped"], 0))
    cases = int(dict(item.user_properties).get("cases", 1))
    if report.skipped and report.when in ("setup", "call"):
        tally["skipped"] += 1
    elif report.when == "call":
        tally["tried"] += cases
        if report.passed:
            tally["held"] += cases
        elif call.excinfo is not None and not isinstance(call.excinfo.value, (LatentGraphError, AssertionError)):
            tally["raw"] += 1


def reliability_summary() -> str:
    """One line: attacks tried/blocked, faults survived, bad inputs with named errors, raw errors, skipped."""
    parts = [
        f"{RELIABILITY[k]} {t['tried']} tried, {t['held']} {HELD[k]}"
        for k, t in sorted(RELIABILITY_TALLY.items(), key=lambda kv: list(RELIABILITY).index(kv[0]))
    ]
    raw = sum(t["raw"] for t in RELIABILITY_TALLY.values())
    skipped = sum(t["skipped"] for t in RELIABILITY_TALLY.values())
    return "reliability: " + "; ".join(parts) + f"; raw errors {raw}; skipped {skipped}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RELIABILITY_TALLY:
        terminalreporter.write_sep("-", "reliability suite")
        terminalreporter.write_line(reliability_summary())


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        for tool in mark.args:
            problem = os_tool_problem(tool)
            if problem:
                hint = "" if "apt-get install" in problem else f"; apt-get install {OS_PACKAGES[tool]}"
                pytest.skip(f"needs {tool}: {problem}{hint} (or run `bash scripts/setup.sh` as root)")
