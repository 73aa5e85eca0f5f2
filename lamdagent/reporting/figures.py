"""The report's figures, drawn from plain data (no MLflow access here): the caller reads the store.

- :func:`score_by_iteration`: validation score by iteration per exploration, with window means,
  window standard deviations and running maxima (the paper's Figure 5);
- :func:`pipeline_dag`: one model's lineage as a left-to-right DAG, each node labelled with its name,
  action and score (Figures 3 and 6);
- :func:`scaling_curves`: score against data scale or model size, one line per pipeline, with
  optional horizontal baselines (Figure 7).

Each function writes a PNG (Agg backend, dpi 120) and returns its path. Colours are the Okabe-Ito
colour-blind-safe palette.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

DPI = 120
# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BASELINE_STYLES = [":", "-.", (0, (5, 2)), (0, (1, 1)), (0, (3, 1, 1, 1))]


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _save(fig, out: Path, dpi: int = DPI) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- score by iteration


@dataclass
class WindowStats:
    """Statistics aligned with ``iterations`` (the iterations that have a score, ascending).

    ``mean[k]``/``std[k]``: mean and population standard deviation (ddof=0) of the scores whose
    iteration lies in the trailing window ``(iterations[k] - window, iterations[k]]``: the window
    counts iterations, not points, so a failed (missing) iteration narrows it, and the first
    ``window - 1`` iterations average what exists so far. ``running_max[k]``: the best score up to
    and including ``iterations[k]``.
    """

    iterations: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    running_max: list[float] = field(default_factory=list)


def window_stats(points: list[tuple[int, float | None]], window: int) -> WindowStats:
    """Trailing-window mean/std and running max of ``(iteration, score)`` points.

    Points with a ``None`` or NaN score (a failed action) are dropped; order does not matter.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    clean = sorted((int(i), float(s)) for i, s in points if s is not None and not math.isnan(float(s)))
    stats = WindowStats()
    best = -math.inf
    for it, score in clean:
        inside = [s for i, s in clean if it - window < i <= it]
        mu = sum(inside) / len(inside)
        var = sum((s - mu) ** 2 for s in inside) / len(inside)
        best = max(best, score)
        stats.iterations.append(it)
        stats.scores.append(score)
        stats.mean.append(mu)
        stats.std.append(math.sqrt(var))
        stats.running_max.append(best)
    return stats


def score_by_iteration(series: dict[str, list[tuple[int, float]]], out: Path, window: int = 10, title: str = "") -> Path:
    """Figure 5: per exploration label, the score by iteration (light points), the trailing window
    mean (bold), +/- the window standard deviation (band) and the running maximum (dashed)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for idx, (label, points) in enumerate(series.items()):
        st = window_stats(points, window)
        if not st.iterations:
            continue
        drawn += 1
        c = _colour(idx)
        ax.plot(st.iterations, st.scores, "o-", color=c, alpha=0.3, lw=0.8, ms=3.5)
        ax.fill_between(st.iterations, [m - s for m, s in zip(st.mean, st.std)], [m + s for m, s in zip(st.mean, st.std)],
                        color=c, alpha=0.15, lw=0, step=None)
        ax.plot(st.iterations, st.mean, "-", color=c, lw=2.4, label=label)
        ax.step(st.iterations, st.running_max, "--", where="post", color=c, lw=1.4)
    if not drawn:
        ax.text(0.5, 0.5, "no scored iterations", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation score")
    ax.set_title(title or f"Validation score by iteration (window {window})")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.xaxis.get_major_locator().set_params(integer=True)
        first = ax.legend(loc="upper left", title="exploration", fontsize=9, title_fontsize=9)
        ax.add_artist(first)
        styles = [Line2D([], [], color="grey", marker="o", lw=0.8, alpha=0.5, ms=3.5, label="per iteration"),
                  Line2D([], [], color="grey", lw=2.4, label=f"mean of last {window}"),
                  Line2D([], [], color="grey", lw=6, alpha=0.25, label="\u00b1 window std"),
                  Line2D([], [], color="grey", ls="--", lw=1.4, label="running max")]
        ax.legend(handles=styles, loc="lower right", fontsize=8)
    return _save(fig, out)


# --------------------------------------------------------------------------- pipeline DAG


@dataclass
class PipelineNode:
    """One model of a lineage: ``parents`` are the run ids of its input models (2 for a merge)."""

    run_id: str
    name: str
    label: str
    score: float | None
    parents: list[str]


def dag_layers(nodes: list[PipelineNode]) -> dict[str, int]:
    """Depth of each node: 0 for a leaf, else 1 + the deepest parent. Duplicate run ids count once;
    parents outside ``nodes`` are ignored. Raises ValueError on a cycle."""
    by_id = {n.run_id: n for n in nodes}
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(rid: str) -> int:
        if rid in depth:
            return depth[rid]
        if rid in visiting:
            raise ValueError(f"lineage has a cycle through {rid}")
        visiting.add(rid)
        ps = [p for p in by_id[rid].parents if p in by_id]
        depth[rid] = 1 + max(visit(p) for p in ps) if ps else 0
        visiting.discard(rid)
        return depth[rid]

    for rid in by_id:
        visit(rid)
    return depth


def _positions(nodes: dict[str, PipelineNode], depth: dict[str, int]) -> dict[str, tuple[float, float]]:
    layers: dict[int, list[str]] = defaultdict(list)
    for rid in nodes:  # insertion order: stable
        layers[depth[rid]].append(rid)
    height = max(len(v) for v in layers.values())
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(layers):
        ids = layers[d]
        if d > 0:  # barycentre of the parents' rows: fewer crossings
            def bary(rid: str) -> float:
                ys = [pos[p][1] for p in nodes[rid].parents if p in pos]
                return sum(ys) / len(ys) if ys else 0.0
            ids = sorted(ids, key=bary, reverse=True)
        offset = (height - len(ids)) / 2
        for k, rid in enumerate(ids):
            pos[rid] = (float(d), float(height - 1 - k - offset))
    return pos


def _node_text(n: PipelineNode, width: int = 26) -> str:
    score = "score \u2013" if n.score is None else f"score {n.score:.3f}"
    label = textwrap.fill(n.label, width) if n.label else ""
    return "\n".join(x for x in (n.name, label, score) if x)


GAP_ACROSS, GAP_ALONG, MARGIN = 18, 46, 14  # pixels between boxes of a layer, between layers (the arrows), around
LANE = 10  # pixels between two arrows routed around the same boxes


@dataclass
class _Box:
    """A node's box in pixels: its centre along the flow (inputs to outputs) and across it, half its extents."""

    along: float
    across: float
    half_along: float
    half_across: float

    def holds(self, point: tuple[float, float], pad: float = 3.0) -> bool:
        return abs(point[0] - self.along) < self.half_along + pad and abs(point[1] - self.across) < self.half_across + pad


def _route(start: tuple[float, float], end: tuple[float, float], between: list[_Box], lane: int = 0) -> list[tuple[float, float]]:
    """An arrow's points (along, across): straight, unless that would cross a box of the layers it
    jumps; then around them, on the side nearer its ends, through the gaps between the layers, in
    its own lane (the n-th arrow routed so runs n lanes further out: no two share a line)."""
    straight = [(start[0] + (end[0] - start[0]) * t / 32, start[1] + (end[1] - start[1]) * t / 32) for t in range(33)]
    if not any(box.holds(point) for box in between for point in straight):
        return [start, end]
    low = min(box.across - box.half_across for box in between) - GAP_ACROSS / 2 - LANE * lane
    high = max(box.across + box.half_across for box in between) + GAP_ACROSS / 2 + LANE * lane
    side = low if abs(low - start[1]) + abs(low - end[1]) <= abs(high - start[1]) + abs(high - end[1]) else high
    first = min(box.along - box.half_along for box in between) - GAP_ALONG / 2
    last = max(box.along + box.half_along for box in between) + GAP_ALONG / 2
    return [start, (first, side), (last, side), end]


def pipeline_dag(nodes: list[PipelineNode], out: Path, title: str = "", dpi: int = DPI, direction: str = "right",
                 fontsize: float = 8.5) -> Path:
    """Figures 3/6: a lineage drawn from its leaves (base model, specialists) to the final model
    (the node no other node consumes, outlined in orange), left to right (`direction="right"`) or
    top to bottom (`"down"`: narrow, for a page that fits images to its width). Shared ancestors are
    drawn once. Laid out in pixels: the boxes are measured first, so each arrow starts on its input's
    box and ends with its head on its output's, an arrow that jumps layers goes around the boxes
    between, and the text keeps `fontsize` whatever the lineage's size."""
    if direction not in ("right", "down"):
        raise ValueError(f"direction must be 'right' or 'down', got {direction!r}")
    uniq: dict[str, PipelineNode] = {}
    for n in nodes:
        uniq.setdefault(n.run_id, n)
    if not uniq:
        raise ValueError("pipeline_dag needs at least one node")
    depth = dag_layers(list(uniq.values()))
    order = _positions(uniq, depth)  # (layer, row): rows ordered to cross few edges
    layers = [sorted((r for r in uniq if depth[r] == d), key=lambda r: -order[r][1]) for d in range(max(depth.values()) + 1)]
    consumed = {p for n in uniq.values() for p in n.parents}
    scores = [n.score for n in uniq.values() if n.score is not None]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
    cmap = matplotlib.colormaps["Blues"]
    down = direction == "down"

    # pyplot's own figure list is not used (drawn off the main thread: exploration/presenting.py)
    fig = Figure(dpi=dpi)
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    texts = {}
    for rid, n in uniq.items():
        final = rid not in consumed
        if not [p for p in n.parents if p in uniq]:
            face = "#EEEEEE"
        elif n.score is None:
            face = "#FFFFFF"
        else:
            face = cmap(0.12 + 0.38 * ((n.score - lo) / (hi - lo) if hi > lo else 1.0))
        texts[rid] = ax.text(0, 0, _node_text(n, 18 if down else 26), ha="center", va="center", fontsize=fontsize, zorder=3,
                             fontweight="bold" if final else "normal", linespacing=1.25,
                             bbox=dict(boxstyle="round,pad=0.45", fc=face, ec="#D55E00" if final else "#555555", lw=2.0 if final else 1.0))
    extent = {}  # run id -> (along, across) extent of its box in pixels
    for rid, text in texts.items():
        text.draw(renderer)  # sizes the box around the text
        window = text.get_bbox_patch().get_window_extent(renderer)
        extent[rid] = (window.height, window.width) if down else (window.width, window.height)

    # the layers one after the other along the flow, each centred across it
    thickness = [max(extent[r][0] for r in layer) for layer in layers]
    spans = [sum(extent[r][1] for r in layer) + GAP_ACROSS * (len(layer) - 1) for layer in layers]
    box: dict[str, _Box] = {}
    start = 0.0
    for k, layer in enumerate(layers):
        pos = (max(spans) - spans[k]) / 2
        for rid in layer:
            box[rid] = _Box(start + thickness[k] / 2, pos + extent[rid][1] / 2, extent[rid][0] / 2, extent[rid][1] / 2)
            pos += extent[rid][1] + GAP_ACROSS
        start += thickness[k] + GAP_ALONG

    edges = [(p, rid) for rid, n in uniq.items() for p in dict.fromkeys(n.parents) if p in uniq]
    inputs = {rid: sorted((p for p, r in edges if r == rid), key=lambda p: box[p].across) for rid in uniq}
    outputs = {rid: sorted((r for p, r in edges if p == rid), key=lambda r: box[r].across) for rid in uniq}

    def side(rid: str, others: list[str], other: str, outgoing: bool) -> tuple[float, float]:
        """Where an arrow leaves (outgoing) or enters a box: on its side facing the flow, the arrows
        of several inputs (outputs) spread along it in the order of their boxes."""
        b = box[rid]
        spread = (others.index(other) + 1) / (len(others) + 1) - 0.5
        return b.along + (b.half_along if outgoing else -b.half_along), b.across + spread * 2 * b.half_across * 0.7

    routes, lanes = [], 0
    for p, rid in sorted(edges, key=lambda edge: depth[edge[1]] - depth[edge[0]]):  # the shortest jumps in the inner lanes
        route = _route(side(p, outputs[p], rid, True), side(rid, inputs[rid], p, False),
                       [box[r] for r in uniq if depth[p] < depth[r] < depth[rid]], lanes)
        lanes += len(route) > 2
        routes.append(route)

    # the figure: the boxes and routes, a margin, the title above
    title_px = fontsize * 1.3 * dpi / 72 * 1.8
    across_lo = min([0.0] + [point[1] for route in routes for point in route]) - 4
    across_hi = max([max(spans)] + [point[1] for route in routes for point in route]) + 4
    length, breadth = start - GAP_ALONG, across_hi - across_lo
    w, h = (breadth, length) if down else (length, breadth)
    fig_w, fig_h = max(w + 2 * MARGIN, 320), max(h + 2 * MARGIN + title_px, 320)
    fig.set_size_inches(fig_w / dpi, fig_h / dpi)
    dx, dy = (fig_w - w) / 2, title_px + MARGIN + (fig_h - title_px - 2 * MARGIN - h) / 2

    def xy(point: tuple[float, float]) -> tuple[float, float]:
        along, across = point[0], point[1] - across_lo
        return (across + dx, along + dy) if down else (along + dx, across + dy)

    ax.set_xlim(0, fig_w)
    ax.set_ylim(fig_h, 0)  # y grows downwards, as on the page
    for rid, text in texts.items():
        text.set_position(xy((box[rid].along, box[rid].across)))
    for route in routes:
        path = MplPath([xy(point) for point in route])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=14, color="#333333", lw=1.3, zorder=2, joinstyle="round"))
    ax.text(fig_w / 2, MARGIN + title_px / 2, title or "Pipeline", ha="center", va="center", fontsize=fontsize * 1.3)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


# --------------------------------------------------------------------------- scaling curves


@dataclass
class ScalingPoint:
    series: str
    x: float
    score: float


def scaling_curves(points: list[ScalingPoint], out: Path, xlabel: str = "data scale", title: str = "",
                   baselines: dict[str, float] | None = None) -> Path:
    """Figure 7: score against x (data factor, model size, ...), one line per pipeline, with a
    horizontal reference line per baseline."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in points:
        groups[p.series].append((float(p.x), float(p.score)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs_all: set[float] = set()
    for idx, (label, pts) in enumerate(groups.items()):
        pts.sort()
        xs_all.update(x for x, _ in pts)
        ax.plot([x for x, _ in pts], [s for _, s in pts], "o-", color=_colour(idx), lw=2, ms=6, label=label)
    for k, (label, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color="#555555", ls=BASELINE_STYLES[k % len(BASELINE_STYLES)], lw=1.3, label=f"{label} (baseline)")
    if not groups and not baselines:
        ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes, color="grey")
    if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 20:
        ax.set_xscale("log")  # model sizes: 135M .. 7B
    if 0 < len(xs_all) <= 10:
        xs = sorted(xs_all)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score")
    ax.set_title(title or f"Score by {xlabel}")
    ax.grid(True, alpha=0.3)
    if groups or baselines:
        ax.legend(fontsize=9, loc="best")
    return _save(fig, out)


# --------------------------------------------------------------------------- search comparison


@dataclass
class Band:
    """One policy's best-so-far curve over seeds: at each x, the mean and its 95% confidence interval."""

    label: str
    x: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


def best_so_far(bands: list[Band], out: Path, xlabel: str = "iteration", title: str = "") -> Path:
    """The search benchmark's figure: best validation score found so far, mean over seeds with a
    95% confidence band, one line per policy."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for idx, band in enumerate(bands):
        c = _colour(idx)
        ax.fill_between(band.x, band.low, band.high, color=c, alpha=0.15, lw=0, step="post")
        ax.step(band.x, band.mean, where="post", color=c, lw=2.2, label=band.label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("best validation score so far")
    ax.set_title(title or "Best-so-far validation score (mean and 95% CI over seeds)")
    ax.grid(True, alpha=0.3)
    if bands:
        ax.legend(loc="lower right", fontsize=9)
    return _save(fig, out)
