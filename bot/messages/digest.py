"""The digest message, daily, weekly or monthly. Pure: gathered data in, `{"text", "blocks"}`
out.

Names from Scenario (budget labels, culprits) and the notes (which may quote Scenario's
errors) arrive as they are and are escaped here, once, where they go into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.budgets.periods import DigestSpan
from bot.budgets.types import PeriodKind
from bot.messages.charts import UNIT
from bot.messages.culprits import culprit_line
from bot.messages.mrkdwn import context, cu, escape, header, percent, progress_bar, section
from bot.reports.digest import AVERAGE_OVER, CHART_SPANS

if TYPE_CHECKING:
    from bot.budgets.culprits import Culprit
    from bot.reports.digest import DayAlert, DigestData
    from bot.store.digests import Digest

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class _Words:
    """How a digest of one cadence speaks of its span."""

    kind: str  # "" for the daily digest, which was the only one and keeps its words
    span: Callable[[DigestSpan], str]  # the span's name
    last: str  # "yesterday", "last week", "last month"
    all_quiet: str  # nothing spent in the span nor in the ones before it
    at: str  # strftime of an alert's time


_WORDS = {
    PeriodKind.DAILY: _Words(
        "", lambda s: f"{s.first:%A %d %B}", "yesterday", "nothing spent all week", "%H:%M"
    ),
    PeriodKind.WEEKLY: _Words(
        "weekly ",
        lambda s: f"{s.first:%a %d %b} – {s.last:%a %d %b %Y}",
        "last week",
        "",
        "%a %d %b %H:%M",
    ),
    PeriodKind.MONTHLY: _Words(
        "monthly ", lambda s: f"{s.first:%B %Y}", "last month", "", "%a %d %b %H:%M"
    ),
}


def schedule_words(
    cadence: PeriodKind | str, weekday: int | None, at: str, *, quiet: bool = False
) -> str:
    """When a digest goes out: `every day at 09:00`, `every Monday at 09:00`, `on the 1st of
    every month at 09:00` (`at` as given, e.g. `*09:00*`), and `, quiet` for one that says
    nothing about a span without spend."""
    cadence = PeriodKind(cadence)
    if cadence is PeriodKind.WEEKLY and weekday is not None:
        when = f"every {WEEKDAYS[weekday]} at {at}"
    elif cadence is PeriodKind.MONTHLY:
        when = f"on the 1st of every month at {at}"
    else:
        when = f"every day at {at}"
    return when + (", quiet" if quiet else "")


def digest_lines(digests: Sequence[Digest], tz: str) -> str:
    """The digests of a workspace on one line, for Home and `/budget list` (mrkdwn)."""
    if not digests:
        return "*Digests*: none yet."
    places = ", ".join(
        f"{schedule_words(d.cadence, d.weekday, d.at)} in <#{d.channel_id}>" for d in digests
    )
    return f"*Digests*: {places} ({tz} time)."


def chart_title(data: DigestData) -> str:
    cadence = data.span.cadence
    bars = CHART_SPANS[cadence]
    return f"CU per {UNIT[cadence]}, last {bars} {UNIT[cadence]}s ({data.tz})"


def _change(spend: float, average: float, cadence: PeriodKind) -> str:
    before = AVERAGE_OVER[cadence]
    unit = UNIT[cadence]
    if average == 0:
        if spend:
            return f"no spend in the {before} {unit}s before"
        return _WORDS[cadence].all_quiet or f"nothing spent in the {before} {unit}s before either"
    delta = (spend - average) / average * 100
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f"{arrow} {abs(delta):.0f} % against the {before}-{unit} average of {cu(average)}"


def _lines(culprits: list[Culprit], total: float) -> str:
    return "\n".join(culprit_line(c, total) for c in culprits)


def digest_message(data: DigestData, *, when_empty: str = "line") -> dict[str, Any] | None:
    """None when nothing was spent and the digest is set to say nothing then."""
    words = _WORDS[data.span.cadence]
    day = words.span(data.span)
    title = f"☀️ Scenario {words.kind}digest"
    if data.empty:
        if when_empty == "skip":
            return None
        text = f"{title} for {day}: nothing was spent."
        return {"text": text, "blocks": [section(text)]}
    change = _change(data.spend, data.average, data.span.cadence)
    text = f"{title} for {day}: {cu(data.spend)} spent — {change}."
    blocks: list[dict[str, Any]] = [
        header(f"{title} — {day}"),
        section(f"*{cu(data.spend)}* spent {words.last}\n{change}"),
    ]
    if data.budgets:
        rows = []
        for status in data.budgets:
            budget = status.budget
            label = escape(budget.label)
            if status.spend is None:
                rows.append(f"*{label}* — spend unavailable")
                continue
            rows.append(
                f"*{label}* {progress_bar(status.spend, budget.limit_cu)} "
                f"{cu(status.spend)} of {cu(budget.limit_cu)} "
                f"({percent(status.spend, budget.limit_cu)})"
            )
        blocks.append(section("*Budgets*\n" + "\n".join(rows[:20])))
    for title, culprits in (
        ("Top projects", data.projects),
        ("Top users and API keys", data.users),
        ("Top models", data.models),
    ):
        if culprits:
            blocks.append(section(f"*{title}*\n" + _lines(culprits, data.spend)))
    if data.alerts:
        rows = [
            f"• {escape(a.budget_label)}: {_what_fired(a)}"
            + f" at {a.at.astimezone(ZoneInfo(data.tz)).strftime(words.at)}"
            for a in data.alerts[:15]
        ]
        more = len(data.alerts) - 15
        if more > 0:
            rows.append(f"…and {more} more")
        blocks.append(section(f"*Alerts {words.last}*\n" + "\n".join(rows)))
    # The chart is drawn only from data (see `bot.jobs.digest`): promise it only then.
    follows = " The chart follows in the thread." if data.chart else ""
    blocks.append(context(f"Times in {data.tz}.{follows}"))
    for note in data.notes:
        blocks.append(context(f"⚠️ {escape(note)}"))
    return {"text": text, "blocks": blocks}


_ANOMALIES = {
    "anomaly:velocity": "spending far above its usual rate",
    "anomaly:new": "first spend in 30 days",
    "anomaly:off-hours": "spending at an hour it never does",
}


def _what_fired(alert: DayAlert) -> str:
    if alert.kind in _ANOMALIES:
        return _ANOMALIES[alert.kind]
    return "forecast over the limit" if alert.kind == "forecast" else f"{alert.level} % reached"
