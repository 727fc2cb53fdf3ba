"""Tiny inline-SVG drawings for the HTML report: the graph and bar / line charts.

Hand-written SVG keeps the report self-contained, small and fast to build (no
plotting library, no fonts or scripts from the network). All text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from langgraph.graph import END, START

from latent_graph.present.layout import LATENT, PLAIN, RAN, TEXT, Shape, label, render, to_dot

PALETTE = ["#7c3aed", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#6366f1", "#84cc16", "#ec4899"]


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node for the fallback top-down layout; back edges of cycles are ignored."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in succ and b in succ:
            succ[a].append(b)
    back, state = set(), dict.fromkeys(nodes, 0)  # 0 new, 1 on the DFS stack, 2 done

    def visit(n: str) -> None:
        state[n] = 1
        for m in succ[n]:
            if state[m] == 1:
                back.add((n, m))
            elif state[m] == 0:
                visit(m)
        state[n] = 2

    for n in nodes:
        if state[n] == 0:
            visit(n)
    depth = {n: 0 for n in nodes}
    for _ in nodes:
        for a, b in edges:
            if a in depth and b in depth and (a, b) not in back:
                depth[b] = max(depth[b], depth[a] + 1)
    return depth


def graph_svg(
    nodes: Sequence[str],
    edges: Mapping[str, str],
    highlight: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """The graph laid out by Graphviz ``dot`` (cycles, conditional edges, subgraph clusters), else top-down.

    Args:
        nodes: Node names (``__start__`` / ``__end__`` included).
        edges: ``{"src->dst": kind}``.
        highlight: Executed nodes in order (highlighted; numbered in the fallback drawing).
        labels: ``{"src->dst": label}`` of conditional edges (drawn dashed and labelled).
    """
    highlight = list(highlight)
    laid = render(to_dot(Shape.from_record(list(nodes), dict(edges), dict(labels or {})), highlight))
    if laid is not None:  # inline in HTML: no XML prologue, comments or namespace URLs
        svg = re.sub(r"<!--.*?-->", "", laid.decode("utf-8")[laid.decode("utf-8").index("<svg") :], flags=re.S)
        svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
        return '<div class="graph dot">' + svg + "</div>"
    pairs = [(k.split("->", 1)[0], k.split("->", 1)[1], v) for k, v in edges.items() if "->" in k]
    nodes = list(nodes) or sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs})
    depth = layers(nodes, [(a, b) for a, b, _ in pairs])
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(depth[n], []).append(n)
    bw, bh, gx, gy = 130, 34, 30, 70
    width = max(360, max(len(r) for r in rows.values()) * (bw + gx) + gx)
    height = len(rows) * (bh + gy) - gy + 50
    pos = {}
    for d, names in rows.items():
        span = len(names) * (bw + gx) - gx
        for i, n in enumerate(names):
            pos[n] = ((width - span) / 2 + i * (bw + gx) + bw / 2, 20 + d * (bh + gy) + bh / 2)
    order = {n: i + 1 for i, n in enumerate(highlight)}
    out = [
        f'<svg class="graph" viewBox="0 0 {width:.0f} {height + 24:.0f}" '
        f'width="{width:.0f}" height="{height + 24:.0f}" role="img" aria-label="graph">',
        "<defs>"
        + "".join(
            f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for k, c in (("latent", LATENT), ("text", TEXT), ("plain", PLAIN))
        )
        + "</defs>",
    ]
    for a, b, kind in pairs:
        if a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        style = {
            "latent": f'stroke="{LATENT}" stroke-width="3.5"',
            "text": f'stroke="{TEXT}" stroke-width="2" stroke-dasharray="7 5"',
        }.get(kind, f'stroke="{PLAIN}" stroke-width="1.2"')
        ran = a in order and b in order or (a == START and b in order) or (b == END and a in order)
        kind = kind if kind in ("latent", "text") else "plain"
        out.append(
            f'<line class="edge {kind}{" ran" if ran else ""}" x1="{x0:.1f}" y1="{y0 + bh / 2:.1f}" '
            f'x2="{x1:.1f}" y2="{y1 - bh / 2 - 2:.1f}" {style} marker-end="url(#arrow-{kind})"/>'
        )
        if kind != "plain":
            out.append(
                f'<text x="{(x0 + x1) / 2 + 6:.1f}" y="{(y0 + y1) / 2:.1f}" font-size="11" '
                f'fill="{LATENT if kind == "latent" else TEXT}">{kind}</text>'
            )
    for n, (x, y) in pos.items():
        ran = n in order or (n in (START, END) and order)
        fill = RAN if n in order else ("#ffffff" if n in (START, END) else "#ede9fe")
        rx = bh / 2 if n in (START, END) else 8
        box = (
            f'<rect x="{x - bw / 2:.1f}" y="{y - bh / 2:.1f}" width="{bw}" height="{bh}" rx="{rx}" '
            f'fill="{fill}" stroke="{"#b45309" if n in order else "#4b5563"}" '
            f'stroke-width="{2 if ran else 1}"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="13">{escape(label(n))}</text>'
        )
        if n in order:
            box += (
                f'<circle cx="{x + bw / 2 - 4:.1f}" cy="{y - bh / 2 + 4:.1f}" r="9" fill="#b45309"/>'
                f'<text x="{x + bw / 2 - 4:.1f}" y="{y - bh / 2 + 8:.1f}" text-anchor="middle" font-size="11" '
                f'fill="#fff">{order[n]}</text>'
            )
            box = f'<a href="#node-{escape(n)}" class="node ran" data-node="{escape(n)}">{box}</a>'
        else:
            box = f'<g class="node" data-node="{escape(n)}">{box}</g>'
        out.append(box)
    ly = height + 8
    out.append(
        f'<line x1="10" y1="{ly}" x2="40" y2="{ly}" stroke="{LATENT}" stroke-width="3.5"/>'
        f'<text x="46" y="{ly + 4}" font-size="11">latent edge</text>'
        f'<line x1="130" y1="{ly}" x2="160" y2="{ly}" stroke="{TEXT}" stroke-width="2" stroke-dasharray="7 5"/>'
        f'<text x="166" y="{ly + 4}" font-size="11">text edge</text>'
        f'<rect x="240" y="{ly - 7}" width="22" height="14" rx="3" fill="{RAN}" stroke="#b45309"/>'
        f'<text x="268" y="{ly + 4}" font-size="11">executed (order)</text>'
    )
    out.append("</svg>")
    return "".join(out)


def timeline_svg(records: Sequence[Mapping[str, Any]]) -> str:
    """One bar per node run from its ``start`` to its ``end``: parallel branches show as overlapping bars."""
    runs = [r for r in records if isinstance(r.get("start"), (int, float)) and isinstance(r.get("end"), (int, float))]
    if not runs:
        return '<p class="muted">no node timings recorded</p>'
    t0 = min(r["start"] for r in runs)
    span = max(max(r["end"] for r in runs) - t0, 1e-6)
    left, width, row = 150, 560, 22
    kinds = {"latent": LATENT, "text": TEXT, "answer": "#b45309"}
    out = [
        f'<svg class="timeline" viewBox="0 0 {left + width + 20} {row * len(runs) + 30}" '
        f'width="{left + width + 20}" height="{row * len(runs) + 30}" role="img" aria-label="timeline">'
    ]
    for i, r in enumerate(runs):
        x = left + (r["start"] - t0) / span * width
        w = max((r["end"] - r["start"]) / span * width, 2.0)
        name = str(r.get("branch") or r.get("node"))
        out.append(
            f'<text x="{left - 6}" y="{i * row + 15}" text-anchor="end" font-size="11">{escape(name)}</text>'
            f'<rect class="run" x="{x:.1f}" y="{i * row + 4}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{kinds.get(str(r.get("kind")), PLAIN)}" data-start="{r["start"] - t0:.4f}" '
            f'data-end="{r["end"] - t0:.4f}"><title>{escape(name)}: {r["start"] - t0:.3f}s to '
            f"{r['end'] - t0:.3f}s</title></rect>"
        )
    y = row * len(runs) + 20
    out.append(
        f'<line x1="{left}" y1="{y - 8}" x2="{left + width}" y2="{y - 8}" stroke="#9ca3af"/>'
        f'<text x="{left}" y="{y + 6}" font-size="10">0 s</text>'
        f'<text x="{left + width}" y="{y + 6}" font-size="10" text-anchor="end">{span:.3f} s</text></svg>'
    )
    return "".join(out)


def _nice(v: float) -> float:
    """A round axis maximum at or above ``v``."""
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10 if v >= 1 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= v:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def _frame(title: str, w: int, h: int, top: float, unit: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{escape(title)}">',
        f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="8" y="30" font-size="10" fill="#6b7280">{escape(unit)} (max {_fmt(top)})</text>',
    ]


def _legend(names: Sequence[str], w: int, y: float) -> str:
    parts, x = [], 50.0
    for i, name in enumerate(names):
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{y}" font-size="10">{escape(name)}</text>'
        )
        x += 24 + 6.5 * len(name)
    return "".join(parts)


def _axes(x0: float, y0: float, y1: float, xr: float, top: float) -> list[str]:
    """The x axis line and two horizontal grid lines (half and full scale) with their labels."""
    out = [f'<line x1="{x0}" y1="{y1}" x2="{xr}" y2="{y1}" stroke="#9ca3af"/>']
    for frac in (0.5, 1.0):
        y = y1 - (y1 - y0) * frac
        out.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{xr}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{x0 - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{_fmt(top * frac)}</text>'
        )
    return out


def bar_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    unit: str = "",
    stacked: bool = False,
    width: int = 460,
    height: int = 240,
    intervals: Sequence[tuple[float, float]] | None = None,
) -> str:
    """Grouped (or stacked) vertical bars: one group per label, one bar per series.

    ``intervals`` (one ``(low, high)`` per label) draws whiskers on a single series (e.g. 95% CIs).
    """
    names = list(series)
    sums = (
        [sum(series[s][i] for s in names) for i in range(len(labels))]
        if stacked
        else [max((series[s][i] for s in names), default=0) for i in range(len(labels))]
    )
    top = _nice(max(sums + [hi for _, hi in intervals or []], default=0))
    x0, y0, y1 = 44.0, 40.0, height - 52.0
    gw = (width - x0 - 10) / max(1, len(labels))
    out = _frame(title, width, height, top, unit) + _axes(x0, y0, y1, width - 10, top)
    for i, lab in enumerate(labels):
        gx = x0 + i * gw
        base = y1
        bw = gw * 0.7 / (1 if stacked else max(1, len(names)))
        for j, s in enumerate(names):
            v = float(series[s][i])
            h = (y1 - y0) * v / top
            x = gx + gw * 0.15 + (0 if stacked else j * bw)
            y = (base - h) if stacked else (y1 - h)
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" height="{max(h, 0):.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(f"{lab} · {s}: {_fmt(v)}")}</title></rect>'
            )
            if stacked:
                base -= h
            if intervals is not None and j == 0:
                cx, (lo, hi) = x + bw / 2, intervals[i]
                out.append(
                    f'<line x1="{cx:.1f}" y1="{y1 - (y1 - y0) * lo / top:.1f}" x2="{cx:.1f}" '
                    f'y2="{y1 - (y1 - y0) * hi / top:.1f}" stroke="#111827" stroke-width="1.5"/>'
                )
        out.append(
            f'<text x="{gx + gw / 2:.1f}" y="{y1 + 13}" font-size="10" text-anchor="middle">{escape(lab[:16])}</text>'
        )
    if len(names) > 1 or names[:1] != [""]:
        out.append(_legend(names, width, height - 14))
    out.append("</svg>")
    return "".join(out)


def line_chart(
    series: Mapping[str, Sequence[float]],
    title: str,
    unit: str = "",
    xlabels: Sequence[str] | None = None,
    width: int = 460,
    height: int = 240,
) -> str:
    """One polyline (with dots) per series over x = 0, 1, 2, ... (``xlabels`` names the ticks)."""
    names = [n for n in series if len(series[n])]
    n = max((len(series[s]) for s in names), default=0)
    vals = [float(v) for s in names for v in series[s]]
    top = _nice(max(vals, default=0))
    x0, y0, y1, xr = 44.0, 40.0, height - 52.0, width - 14.0
    out = _frame(title, width, height, top, unit) + _axes(x0, y0, y1, xr, top)

    def px(i: int) -> float:
        return x0 + 10 + (xr - x0 - 20) * (i / max(1, n - 1))

    for i in range(n):
        lab = xlabels[i] if xlabels and i < len(xlabels) else str(i)
        if n <= 16 or i % max(1, n // 12) == 0:
            out.append(
                f'<text x="{px(i):.1f}" y="{y1 + 13}" font-size="9" text-anchor="middle">{escape(lab[:14])}</text>'
            )
    for j, s in enumerate(names):
        c = PALETTE[j % len(PALETTE)]
        pts = [(px(i), y1 - (y1 - y0) * float(v) / top) for i, v in enumerate(series[s])]
        out.append(
            f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            + '"/>'
        )
        out += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{c}"><title>{escape(f"{s}[{i}]: {_fmt(v)}")}'
            f"</title></circle>"
            for i, ((x, y), v) in enumerate(zip(pts, series[s]))
        ]
    if not names:
        out.append(
            f'<text x="{width / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" font-size="11" fill="#6b7280">'
            "no data</text>"
        )
    out.append(_legend(names, width, height - 14))
    out.append("</svg>")
    return "".join(out)


def standalone(panels: Sequence[str], width: int = 460, height: int = 240) -> str:
    """Charts side by side as one standalone SVG document (for files, not inline HTML)."""
    inner = "".join(f'<g transform="translate({i * width},0)">{p}</g>' for i, p in enumerate(panels))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * len(panels)}" height="{height}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>{inner}</svg>\n'
    )
