"""The pieces every message is made of: numbers, times, escaped text, links and blocks, each
within Slack's limits. Pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Json = dict[str, Any]


SECTION_LIMIT = 3000


HEADER_LIMIT = 150


BAR_CELLS = 12


def cu(value: float) -> str:
    """`12,345 CU`, with one decimal under 100 where it matters."""
    if abs(value) < 100 and value != int(value):
        return f"{value:,.1f} CU"
    return f"{value:,.0f} CU"


def percent(spend: float, limit: float) -> str:
    return f"{spend / limit * 100:.0f} %" if limit else "–"


def progress_bar(spend: float, limit: float, cells: int = BAR_CELLS) -> str:
    share = 0.0 if limit <= 0 else max(0.0, spend / limit)
    filled = min(cells, round(share * cells))
    bar = "█" * filled + "░" * (cells - filled)
    return f"`{bar}`" + (" ⚠️" if share > 1 else "")


def duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def local_time(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %d %b %H:%M")


def clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Text from Scenario as plain text in mrkdwn: a member called `<!channel>` pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(actor: str) -> str:
    """Who made a change: a Slack user as a mention; anything else (`slack` itself, `cli`,
    the command line) as a name."""
    return f"<@{actor}>" if re.fullmatch(r"[UW][A-Z0-9_]{2,}", actor) else escape(actor)


def link(url: str | None, label: str) -> str:
    # Slack's link syntax also breaks on "|" inside the label.
    safe = escape(label).replace("|", "¦")
    return f"<{url}|{safe}>" if url else safe


def plain_text(text: str) -> Json:
    """A plain-text object (titles, labels, options): shown as typed, nothing parsed."""
    return {"type": "plain_text", "text": text}


def section(text: str) -> Json:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def header(text: str) -> Json:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_LIMIT)}}


def context(text: str) -> Json:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text)}]}


def button(text: str, action_id: str, *, value: str | None = None, url: str | None = None) -> Json:
    element: Json = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75]},
        "action_id": action_id,
    }
    if value is not None:
        element["value"] = value[:2000]
    if url is not None:
        element["url"] = url[:3000]
    return element


def slack_date(instant: datetime, tz: str) -> str:
    """A time every reader sees in their own timezone; the workspace's local time otherwise."""
    fallback = f"{local_time(instant, tz)} ({tz})"
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def reply(text: str) -> Json:
    return {"text": text, "blocks": [section(text)]}
