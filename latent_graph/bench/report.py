"""Reports: ``summary.json``, a markdown table (``results.md``) and a plot.

The plot (accuracy with 95% interval, seconds per question, generated tokens per
question, one bar per method) is always written as dependency-free SVG; a PNG is
added when matplotlib is importable (otherwise the markdown says so).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latent_graph.bench.metrics import MethodSummary

if TYPE_CHECKING:
    from latent_graph.bench.runner import BenchSummary


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
        + (f". 1-min load average while the batches ran: {env['load_avg_1m_batches'][0]}–{env['load_avg_1m_batches'][1]}"
           if env.get("load_avg_1m_batches") else ""),
    ]
    if multi:
        lines.append("Method ratios compare runs at the main batch size; other batch sizes serve the throughput ratio.")
    if plot_note:
        lines += ["", plot_note]
    return "\n".join(lines) + "\n"


def svg_plot(methods: list[MethodSummary]) -> str:
    """Three bar panels (accuracy ± 95% CI, s/question, generated tokens/question) as SVG."""
    multi = len({m.batch_size for m in methods}) > 1
    labels = [_label(m, multi) for m in methods]
    panels = [
        ("accuracy (95% CI)", [m.accuracy for m in methods], [(m.ci_low, m.ci_high) for m in methods], 1.0),
        ("seconds / question", [m.s_per_question for m in methods], None, None),
        ("generated tokens / question", [m.generated_tokens for m in methods], None, None),
    ]
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]
    pw, ph, top, bottom, left = 300, 260, 40, 110, 50
    width, height = pw * len(panels) + 20, ph + top + bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for p, (title, values, ci, fixed_max) in enumerate(panels):
        x0 = p * pw + left
        inner = pw - left - 10
        vmax = fixed_max or max([v for v in values if v == v] + [1e-9]) * 1.15
        out.append(f'<text x="{x0 + inner / 2}" y="{top - 18}" text-anchor="middle" font-size="13">{escape(title)}</text>')
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + ph}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + inner}" y2="{top + ph}" stroke="black"/>')
        for t in range(5):
            v = vmax * t / 4
            y = top + ph - ph * t / 4
            txt = f"{v:.2f}" if vmax < 10 else f"{v:.0f}"
            out.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end">{txt}</text>')
        bw = inner / max(1, len(values))
        for i, v in enumerate(values):
            h = ph * min(v, vmax) / vmax if vmax > 0 else 0
            x = x0 + i * bw + bw * 0.15
            out.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" fill="{colors[i % len(colors)]}"/>')
            if ci is not None:
                lo, hi = ci[i]
                cx = x + bw * 0.35
                y_lo, y_hi = top + ph - ph * lo / vmax, top + ph - ph * hi / vmax
                out.append(f'<line x1="{cx:.1f}" y1="{y_lo:.1f}" x2="{cx:.1f}" y2="{y_hi:.1f}" stroke="black"/>')
            lx, ly = x + bw * 0.35, top + ph + 10
            out.append(f'<text x="{lx:.1f}" y="{ly}" transform="rotate(40 {lx:.1f} {ly})">{escape(labels[i])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png_plot(methods: list[MethodSummary], path: Path) -> bool:
    """Write the same plot as PNG with matplotlib; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    multi = len({m.batch_size for m in methods}) > 1
    labels = [_label(m, multi) for m in methods]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    acc = [m.accuracy for m in methods]
    err = [[max(0.0, a - m.ci_low) for a, m in zip(acc, methods)], [max(0.0, m.ci_high - a) for a, m in zip(acc, methods)]]
    axes[0].bar(labels, acc, yerr=err, capsize=4)
    axes[0].set_ylim(0, 1)
    axes[0].set_title("accuracy (95% CI)")
    axes[1].bar(labels, [m.s_per_question for m in methods])
    axes[1].set_title("seconds / question")
    axes[2].bar(labels, [m.generated_tokens for m in methods])
    axes[2].set_title("generated tokens / question")
    for ax in axes:
        ax.tick_params(axis="x", rotation=40)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_report(summary: BenchSummary, out_dir: str | Path) -> dict[str, str]:
    """Write summary.json, results.md, plot.svg (and plot.png if possible); return their paths."""
    out = Path(out_dir)
    files = {"json": str(out / "summary.json"), "markdown": str(out / "results.md"), "svg": str(out / "plot.svg")}
    (out / "plot.svg").write_text(svg_plot(summary.methods), encoding="utf-8")
    note = ""
    if png_plot(summary.methods, out / "plot.png"):
        files["png"] = str(out / "plot.png")
    else:
        note = "Plot: plot.svg (matplotlib is not installed, so no plot.png)."
    summary.files = files
    (out / "results.md").write_text(markdown(summary, note), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return files


__all__ = ["environment_info", "markdown", "png_plot", "svg_plot", "write_report"]
