"""The digest's chart: CU per day over the last 14 days (per week over 12 weeks, per month
over 12 months), stacked by model. Pure: data in, PNG bytes out, through matplotlib's Agg
backend (no display, no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.budgets.types import PeriodKind

# Colour-blind-safe (Okabe–Ito), distinct on a white card in Slack's light and dark themes.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")
INK = "#1d1c1d"
GRID = "#dddddd"
WIDTH_PX, HEIGHT_PX, DPI = 1200, 600, 150
# What one bar is, by the digest's cadence.
UNIT = {PeriodKind.DAILY: "day", PeriodKind.WEEKLY: "week", PeriodKind.MONTHLY: "month"}


def bar_label(first: date, cadence: PeriodKind) -> str:
    """A bar's name: the day (or the first day of the week) or the month."""
    return first.strftime("%b %Y" if cadence is PeriodKind.MONTHLY else "%d %b")


def spend_chart(
    days: Sequence[date],
    stacks: Mapping[str, Sequence[float]],
    *,
    title: str,
    cadence: PeriodKind = PeriodKind.DAILY,
    limit: float | None = None,
) -> bytes:
    """A PNG of stacked bars, one per day (week, month) starting on `days`; `stacks` maps a
    label to one value per bar (at most six labels plus "Other" read well); `limit` draws
    the line of a daily (weekly, monthly) budget."""
    unit = UNIT[cadence]
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor("white")
    positions = range(len(days))
    bottom = [0.0] * len(days)
    for colour, (label, values) in zip(PALETTE, stacks.items(), strict=False):
        axes.bar(positions, values, bottom=bottom, label=_plain(label), color=colour, width=0.75)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if limit is not None:
        axes.axhline(limit, color="#E01E5A", linewidth=1.5, linestyle="--")
        axes.annotate(
            f"{cadence.value} budget {limit:,.0f} CU",
            xy=(len(days) - 0.5, limit),
            xytext=(0, 4),
            textcoords="offset points",
            ha="right",
            color="#E01E5A",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    labels = [bar_label(d, cadence) for d in days]
    axes.set_xticks(list(positions), labels, rotation=45, ha="right")
    axes.set_ylabel(f"CU per {unit}", color=INK)
    axes.set_title(title, color=INK, fontsize=11, loc="left")
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=INK, labelsize=8)
    if stacks:
        # Headroom above the tallest bar keeps the legend off the data.
        tallest = max([*bottom, limit or 0.0, 1.0])
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
