"""The report's plots, drawn by matplotlib as SVG text that the page holds inline (no script, no
network): score histograms with their gate's thresholds, label counts, durations and resolutions."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np

PASS, FAIL, BAR, EDGE = "#3b7dd8", "#c8c8c8", "#5b8c5a", "#b03a2e"
TOP = 15  # labels shown in a bar chart; the rest summed as "other"


def _figure(width: float = 4.6, height: float = 2.5):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: without the XML prolog and doctype


def inside(values: np.ndarray, bounds: dict | None) -> np.ndarray:
    """Which values a gate's bounds keep (all of them without bounds)."""
    keep = np.ones(len(values), dtype=bool)
    low, high, strict = (bounds or {}).get("min"), (bounds or {}).get("max"), (bounds or {}).get("strict")
    if low is not None:
        keep &= values > low if strict else values >= low
    if high is not None:
        keep &= values < high if strict else values <= high
    return keep


def bins(data: np.ndarray, bounds: dict | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """A histogram's bin edges and x range.  Equal values (all 0) would get numpy's value +- 0.5 in 5
    bins, an axis the score never had (-0.4 ... 0.4): they get one bar, on an axis of the value +- half
    its size, or for 0, +- the distance to the nearest gate bound within 1 (text_score under 0.02),
    else +- 1."""
    low, high = float(data.min()), float(data.max())
    if low < high:
        edges = np.histogram_bin_edges(data, bins=min(40, max(5, int(np.sqrt(len(data))))))
        return edges, (float(edges[0]), float(edges[-1]))
    near = [abs(b - low) for b in ((bounds or {}).get("min"), (bounds or {}).get("max")) if b is not None]
    half = abs(low) / 2 or min([d for d in near if 0 < d <= 1], default=1.0)
    return np.array([low - half / 10, low + half / 10]), (low - half, low + half)


def histogram(values: list[float], title: str, bounds: dict | None = None) -> str:
    """Distribution of a score: in each bin, the clips the gate keeps in blue, the others in grey
    stacked on them; the gate's bounds drawn.  Equal values are one bar, labelled."""
    fig, ax = _figure()
    data = np.asarray(values, dtype=float)
    edges, (left, right) = bins(data, bounds)
    single = len(edges) == 2  # equal values: one bar, on an axis of its own
    kept = inside(data, bounds)
    passed, _ = np.histogram(data[kept], bins=edges)
    failed, _ = np.histogram(data[~kept], bins=edges)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    ax.bar(centres, passed, width=widths, color=PASS)
    ax.bar(centres, failed, width=widths, bottom=passed, color=FAIL)
    if single:
        ax.set_xlim(left, right)
        ax.annotate(f"{len(data)} at {data[0]:.4g}", (centres[0], len(data)), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, len(data) * 1.2)
    # A bound far outside the values (a gate opened with -1000) would squash the histogram to a line.
    span = 0.0 if single else right - left
    for bound in ((bounds or {}).get("min"), (bounds or {}).get("max")):
        if bound is not None and left - span <= bound <= right + span:
            ax.axvline(bound, color=EDGE, linewidth=1.5)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("clips", fontsize=8)
    ax.tick_params(labelsize=7)
    return _svg(fig)


def bars(counts: Counter, title: str) -> str:
    """Label counts, most common first (the rest as "other")."""
    common = counts.most_common(TOP)
    rest = sum(counts.values()) - sum(n for _, n in common)
    labels = [str(label) for label, _ in common] + (["other"] if rest else [])
    values = [n for _, n in common] + ([rest] if rest else [])
    fig, ax = _figure(height=max(1.6, 0.22 * len(labels) + 0.8))
    ax.barh(labels[::-1], values[::-1], color=BAR)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("clips", fontsize=8)
    ax.tick_params(labelsize=7)
    return _svg(fig)
