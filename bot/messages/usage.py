"""The `/usage` answer as Block Kit: plain data in, `{"text", "blocks"}` out. Pure.

One message: the total for the range and its change against the range of equal length
right before it, the top projects, users (API keys shown as keys) and models with their
share, and a compact trend (a unicode sparkline between the range's start and end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.budgets.culprits import Culprit
from bot.commands.requests import DateRange, RangePreset, UsageRange
from bot.messages.culprits import culprit_line
from bot.messages.mrkdwn import Json, context, cu, duration, header, link, local_time, section

SPARKS = "▁▂▃▄▅▆▇█"
MAX_SPARK_CELLS = 32

_PRESET_LABELS = {
    RangePreset.LAST_1H: "the last hour",
    RangePreset.LAST_24H: "the last 24 hours",
    RangePreset.LAST_3D: "the last 3 days",
    RangePreset.LAST_7D: "the last 7 days",
    RangePreset.LAST_31D: "the last 31 days",
    RangePreset.TODAY: "today",
    RangePreset.YESTERDAY: "yesterday",
    RangePreset.THIS_WEEK: "this week",
    RangePreset.THIS_MONTH: "this month",
}


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter the report was narrowed by, as resolved: `project Marketing`."""

    kind: str  # "project", "user" or "model"
    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UsageView:
    """Everything the `/usage` answer says, already measured and named."""

    range: UsageRange
    start: datetime
    end: datetime
    tz: str
    total_cu: float
    previous_cu: float  # the same length of time right before `start`
    projects: tuple[Culprit, ...] = ()
    users: tuple[Culprit, ...] = ()
    models: tuple[Culprit, ...] = ()
    series: tuple[float, ...] = ()  # CU per time bucket, oldest first
    filters: tuple[Filter, ...] = ()
    by_model: bool = False  # a model filter: totals from its cost series, users from activity
    users_partial: bool = False  # the activity log was cut short: top users are a sample
    projects_left_out: int = 0  # projects beyond the ones measured one by one


def range_label(wanted: UsageRange) -> str:
    if isinstance(wanted, DateRange):
        if wanted.start == wanted.end:
            return wanted.start.isoformat()
        return f"{wanted.start.isoformat()} – {wanted.end.isoformat()}"
    return _PRESET_LABELS[wanted]


def span_words(length: timedelta) -> str:
    """`hour`, `13 hours`, `24 hours`, `7 days`, `25 d 13 h`: a length after "the previous"."""
    hours, rest = divmod(length, timedelta(hours=1))
    if rest or hours <= 0:
        return duration(length)
    if hours == 1:
        return "hour"
    if hours < 48:
        return f"{hours} hours"
    days, odd_hours = divmod(hours, 24)
    return f"{days} days" if not odd_hours else duration(length)


def change_text(total: float, previous: float, previous_label: str) -> str:
    """`▲ +23 % vs the previous 24 hours (1,000 CU)`; "no spend before" when it was 0."""
    if previous <= 0:
        if total > 0:
            return f"🆕 no spend before (0 CU in {previous_label})"
        return f"no spend in {previous_label} either"
    change = (total - previous) / previous * 100
    arrow = "▲" if change >= 0.5 else "▼" if change <= -0.5 else "▶"
    shown = f"{change:+,.0f} %".replace("-", "−")
    if arrow == "▶":
        shown = "no change"
    return f"{arrow} {shown} vs {previous_label} ({cu(previous)})"


def sparkline(values: Sequence[float], cells: int = MAX_SPARK_CELLS) -> str:
    """One character per cell, ▁ for nothing and ▂…█ scaled to the busiest cell.

    More values than cells are summed in runs of equal length (the last run may be short).
    """
    if not values:
        return ""
    size = -(-len(values) // max(1, cells))
    sums = [math.fsum(values[i : i + size]) for i in range(0, len(values), size)]
    top = max(sums)
    if top <= 0:
        return SPARKS[0] * len(sums)
    return "".join(SPARKS[0] if v <= 0 else SPARKS[1 + round(v / top * 6)] for v in sums)


def filters_text(filters: Sequence[Filter]) -> str:
    return " · ".join(f"{f.kind} *{link(f.url, f.name)}*" for f in filters)


def usage_message(view: UsageView) -> Json:
    label = range_label(view.range)
    previous = f"the previous {span_words(view.end - view.start)}"
    change = change_text(view.total_cu, view.previous_cu, previous)
    scope = filters_text(view.filters)
    title = f"📊 CU usage — {label}"

    summary = f"*{cu(view.total_cu)}*" + (f" · {scope}" if scope else "")
    blocks: list[Json] = [header(title), section(f"{summary}\n{change}")]
    if view.total_cu > 0:
        for heading, lines in (
            ("Top projects", view.projects),
            ("Top users and API keys", view.users),
            ("Top models", view.models),
        ):
            if lines:
                listed = "\n".join(culprit_line(line, view.total_cu) for line in lines)
                blocks.append(section(f"*{heading}*\n{listed}"))
    else:
        blocks.append(section(f"Nothing was spent {_in(label)}."))
    spark = sparkline(view.series)
    if spark and view.total_cu > 0:
        start, end = local_time(view.start, view.tz), local_time(view.end, view.tz)
        blocks.append(section(f"*Trend*  `{spark}`\n{start} → {end}"))

    notes = []
    if view.by_model:
        notes.append(
            "Scenario can't filter usage by model: the total is the model's own cost series,"
            " and its users are counted from the activity log."
        )
    if view.users_partial:
        notes.append("Top users are counted from the most recent activity only.")
    if view.projects_left_out:
        notes.append(
            f"Top projects leave out {view.projects_left_out} more projects, not measured"
            " (each takes a read of its own)."
        )
    notes.append(f"Times in {view.tz}.")
    blocks.append(context(" ".join(notes)))

    text = f"{title}: {cu(view.total_cu)}" + (f" for {_plain(view.filters)}" if scope else "")
    return {"text": f"{text} · {change}", "blocks": blocks}


def _in(label: str) -> str:
    return label if label in ("today", "yesterday") or label.startswith("this ") else f"in {label}"


def _plain(filters: Sequence[Filter]) -> str:
    return ", ".join(f"{f.kind} {link(None, f.name)}" for f in filters)
