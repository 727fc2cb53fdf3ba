"""Reports: ``summary.json``, a markdown table (``results.md``) and a plot.

The plot (accuracy with 95% interval, seconds per question, generated tokens per
question, one bar per method) is drawn by the project's one chart writer,
:mod:`latent_graph.present.svg`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from latent_graph.bench.metrics import BenchSummary, MethodSummary
from latent_graph.present.svg import bar_chart, standalone


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(model: Any = None) -> dict[str, Any]:
    """Hardware and software facts to publish with the numbers."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "versions": {d: _version(d) for d in ("torch", "transformers", "langgraph", "latent-graph")},
    }
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        pass
    if model is not None:
        info["model"] = str(getattr(model, "name", type(model).__name__))
        for attr in ("device", "dtype"):
            if hasattr(model, attr):
                info[attr] = str(getattr(model, attr))
        if hasattr(model, "source"):
            info["model_source"] = str(model.source)
    return info


def _label(m: MethodSummary, multi_batch: bool) -> str:
    return f"{m.method} (bs {m.batch_size})" if multi_batch else m.method


def markdown(summary: BenchSummary, plot_note: str = "") -> str:
    """The results and ratio tables as markdown."""
    c, env = summary.config, summary.environment
    multi = len({m.batch_size for m in summary.methods}) > 1
    lines = [
        f"### {c['task']} — {c['questions']} questions, model {env.get('model', c['model'])}",
        "",
        f"steps={c['steps']} memory={c['memory']} temperature={c['temperature']} top_p={c['top_p']} "
        f"max_new_tokens={c['max_new_tokens']} batch={c['batch_size']} seeds={c['seeds']} repeats={c['repeats']}",
        "",
        "| method | batch | n | accuracy [95% CI] | gen tok/q | total tok/q | latent steps/q | wall s | s/q | q/s "
        "| peak RSS MB (+Δ) | handle KB/q | errors |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in summary.methods:
        lines.append(
            f"| {m.method} | {m.batch_size} | {m.n} | {100 * m.accuracy:.1f}% [{100 * m.ci_low:.1f}, {100 * m.ci_high:.1f}] "
            f"| {m.generated_tokens:.0f} | {m.total_tokens:.0f} | {m.latent_steps:.0f} | {m.wall_s_total:.1f} "
            f"| {m.s_per_question:.2f} | {m.questions_per_s:.3f} | {m.peak_rss_mb:.0f} (+{m.peak_rss_delta_mb:.0f}) "
            f"| {m.handle_kb:.0f} | {m.errors} |"
        )
    lines += ["", "| ratio | measured | goal | met | detail |", "|---|---:|---|---|---|"]
    for r in summary.ratios:
        value = "n/a" if r.value is None else f"{r.value:.2f}"
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.name} | {value} | {r.goal or '—'} | {met} | {r.detail} |")
    lines += [
        "",
        f"Hardware: {env.get('cpu')} ({env.get('cpus_usable')} usable cores, torch threads {env.get('torch_threads')}), "
        f"CUDA: {env.get('cuda') or 'none'}; device {env.get('device')} dtype {env.get('dtype')}. "
        f"Versions: python {env.get('python')}, "
        + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
        + (
            f". 1-min load average while the batches ran: {env['load_avg_1m_batches'][0]}–{env['load_avg_1m_batches'][1]}"
            if env.get("load_avg_1m_batches")
            else ""
        ),
    ]
    if multi:
        lines.append("Method ratios compare runs at the main batch size; other batch sizes serve the throughput ratio.")
    if plot_note:
        lines += ["", plot_note]
    return "\n".join(lines) + "\n"


def svg_plot(methods: list[MethodSummary]) -> str:
    """Three bar panels (accuracy with 95% CI, s/question, generated tokens/question) as one SVG document."""
    multi = len({m.batch_size for m in methods}) > 1
    labels = [_label(m, multi) for m in methods]
    return standalone(
        [
            bar_chart(
                labels,
                {"": [m.accuracy for m in methods]},
                "accuracy (95% CI)",
                "fraction",
                intervals=[(m.ci_low, m.ci_high) for m in methods],
            ),
            bar_chart(labels, {"": [m.s_per_question for m in methods]}, "seconds / question", "s"),
            bar_chart(labels, {"": [m.generated_tokens for m in methods]}, "generated tokens / question", "tokens"),
        ]
    )


def write_report(summary: BenchSummary, out_dir: str | Path) -> dict[str, str]:
    """Write summary.json, results.md, plot.svg (and plot.png if possible); return their paths."""
    out = Path(out_dir)
    files = {"json": str(out / "summary.json"), "markdown": str(out / "results.md"), "svg": str(out / "plot.svg")}
    (out / "plot.svg").write_text(svg_plot(summary.methods), encoding="utf-8")
    summary.files = files
    (out / "results.md").write_text(markdown(summary, "Plot: plot.svg."), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return files


__all__ = ["environment_info", "markdown", "svg_plot", "write_report"]
