"""The daily digest message. Pure: gathered data in, `{"text", "blocks"}` out.

Names from Scenario (budget labels, culprits) and the notes (which may quote Scenario's
errors) arrive as they are and are escaped here, once, where they go into mrkdwn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.messages.culprits import culprit_line
from bot.messages.mrkdwn import context, cu, escape, header, percent, progress_bar, section

if TYPE_CHECKING:
    from bot.budgets.culprits import Culprit
    from bot.reports.digest import DayAlert, DigestData


def _change(spend: float, average: float) -> str:
    if average == 0:
        return "no spend in the 7 days before" if spend else "nothing spent all week"
    delta = (spend - average) / average * 100
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f"{arrow} {abs(delta):.0f} % against the 7-day average of {cu(average)}"


def _lines(culprits: list[Culprit], total: float) -> str:
    return "\n".join(culprit_line(c, total) for c in culprits)


def digest_message(data: DigestData, *, when_empty: str = "line") -> dict[str, Any] | None:
    """None when nothing was spent and the digest is set to say nothing then."""
    day = data.day.strftime("%A %d %B")
    if data.empty:
        if when_empty == "skip":
            return None
        text = f"☀️ Scenario digest for {day}: nothing was spent."
        return {"text": text, "blocks": [section(text)]}
    change = _change(data.spend, data.week_average)
    text = f"☀️ Scenario digest for {day}: {cu(data.spend)} spent — {change}."
    blocks: list[dict[str, Any]] = [
        header(f"☀️ Scenario digest — {day}"),
        section(f"*{cu(data.spend)}* spent yesterday\n{change}"),
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
            + f" at {a.at.astimezone(ZoneInfo(data.tz)):%H:%M}"
            for a in data.alerts[:15]
        ]
        more = len(data.alerts) - 15
        if more > 0:
            rows.append(f"…and {more} more")
        blocks.append(section("*Alerts yesterday*\n" + "\n".join(rows)))
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
