"""The digest's chart: CU per day over the last 14 days, stacked by model. Pure: data in,
PNG bytes out, through matplotlib's Agg backend (no display, no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Colour-blind-safe (Okabe–Ito), distinct on a white card in Slack's light and dark themes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
INK = "#1d1c1d"
GRID = "#dddddd"
WIDTH_PX, HEIGHT_PX, DPI = 1200, 600, 150


def daily_chart(
    days: Sequence[date],
    stacks: Mapping[str, Sequence[float]],
    *,
    title: str,
    limit_per_day: float | None = None,
) -> bytes:
    """A PNG of stacked daily bars; `stacks` maps a label to one value per day (at most
    six labels plus "Other" read well); `limit_per_day` draws a daily budget line."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor("white")
    positions = range(len(days))
    bottom = [0.0] * len(days)
    for colour, (label, values) in zip(PALETTE, stacks.items(), strict=False):
        axes.bar(positions, values, bottom=bottom, label=_plain(label), color=colour, width=0.75)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if limit_per_day is not None:
        axes.axhline(limit_per_day, color="#E01E5A", linewidth=1.5, linestyle="--")
        axes.annotate(
            f"daily budget {limit_per_day:,.0f} CU",
            xy=(len(days) - 0.5, limit_per_day),
            xytext=(0, 4),
            textcoords="offset points",
            ha="right",
            color="#E01E5A",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    axes.set_xticks(list(positions), [d.strftime("%d %b") for d in days], rotation=45, ha="right")
    axes.set_ylabel("CU per day", color=INK)
    axes.set_title(title, color=INK, fontsize=11, loc="left")
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=INK, labelsize=8)
    if stacks:
        # Headroom above the tallest bar keeps the legend off the data.
        tallest = max([*bottom, limit_per_day or 0.0, 1.0])
        axes.set_ylim(0, tallest * (1.12 + 0.08 * ((len(stacks) - 1) // 4 + 1)))
        axes.legend(loc="upper left", fontsize=8, frameon=False, ncols=min(4, len(stacks)))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _plain(name: str) -> str:
    """A model name as matplotlib shows it literally: `$…$` would be parsed as maths (and
    can raise), and a label starting with `_` is left out of the legend."""
    text = name.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text
