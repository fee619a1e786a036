"""The App Home tab (SPEC §7) and the digest settings form, as views. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.budgets.evaluate import AlertKind
from bot.messages.alerts import forecast_range
from bot.messages.budgets import status_state
from bot.messages.digest import digest_lines
from bot.messages.mrkdwn import (
    Json,
    button,
    context,
    cu,
    duration,
    escape,
    header,
    local_time,
    percent,
    plain_text,
    progress_bar,
    section,
)
from bot.reports.status import BudgetStatus
from bot.store.alerts import AlertRow
from bot.store.digests import Digest

MAX_BLOCKS = 100  # Slack's limit for the Home tab
RECENT_ALERTS = 8


ACTION_ADD = "home_add_budget"


ACTION_EDIT = "home_edit_budget"


ACTION_DIGEST = "home_digest_settings"


ACTION_REFRESH = "home_refresh"


DIGEST_CALLBACK = "digest_settings"


BLOCK_DIGEST_CHANNEL = "digest_channel"


BLOCK_DIGEST_TIME = "digest_time"


BLOCK_DIGEST_OFF = "digest_off"


DIGEST_OFF = "off"


DEFAULT_DIGEST_TIME = "09:00"


def budget_line(
    status: BudgetStatus, tz: str, now: datetime, check_every: timedelta | None = None
) -> str:
    budget = status.budget
    head = f"*{escape(budget.label)}* · alerts in <#{budget.channel_id}>"
    if status.spend is None and status.pending is not None:
        within = f", within {duration(check_every)}" if check_every else ""
        spend = (
            f"{progress_bar(0, 0)} {status.pending} — figures at the next check{within}"
            f" · limit {cu(budget.limit_cu)}"
        )
    elif status.spend is None:
        spend = f"{progress_bar(0, 0)} spend unavailable · limit {cu(budget.limit_cu)}"
    else:
        spend = (
            f"{progress_bar(status.spend, budget.limit_cu)} *{cu(status.spend)}*"
            f" of {cu(budget.limit_cu)} · *{percent(status.spend, budget.limit_cu)}*"
        )
        if status.forecast is not None:
            spend += f" · 📈 likely {forecast_range(status.forecast)} by the period's end"
        if status.as_of is not None:
            spend += f" · as of {as_of(status.as_of, tz, now)}"
    thresholds = ", ".join(f"{t} %" for t in budget.thresholds)
    state = f"{status_state(status, tz, now)} · alerts at {thresholds}"
    if budget.forecast:
        state += " and on forecast"
    return f"{head}\n{spend}\n{state}"


def as_of(instant: datetime, tz: str, now: datetime) -> str:
    """`10:05` on the same local day as `now`, else with its day: `Wed 25 Nov 10:05`."""
    zone = ZoneInfo(tz)
    local = instant.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M")
    return local_time(instant, tz)


def alert_line(alert: AlertRow, label: str, tz: str) -> str:
    """One recent alert; ``label`` is the budget's label as stored (escaped here)."""
    when = local_time(alert.fired_at, tz)
    label = escape(label)
    amounts = f"{cu(alert.spend_cu)} of {cu(alert.limit_cu)}"
    if alert.kind is AlertKind.FORECAST:
        line = f"🔮 *{label}* on track to exceed its limit — {amounts}"
    else:
        icon = "🔴" if alert.level >= 100 else "🟠" if alert.level >= 80 else "🟡"
        line = f"{icon} *{label}* reached {alert.level} % — {amounts}"
    if alert.resolved_at is not None:
        line += " · since back under"
    return f"• {line} · {when}"


def home_view(
    *,
    statuses: list[BudgetStatus],
    scenario_error: str | None,
    recent: list[AlertRow],
    labels: dict[int, str],
    digests: list[Digest],
    tz: str,
    now: datetime,
    watch: str | None = None,
    check_every: timedelta | None = None,
) -> Json:
    """The Home tab: at most MAX_BLOCKS blocks whatever the number of budgets; `watch` is
    the watch's line; `check_every`, how often the checks that bring its figures run."""
    top: list[Json] = [
        header("Scenario budgets"),
        context(f"Spend in Compute Units (CU) · periods in {tz} · updated {local_time(now, tz)}"),
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                {**button("Add budget", ACTION_ADD), "style": "primary"},
                button("Digest settings", ACTION_DIGEST),
                button("Refresh", ACTION_REFRESH),
            ],
        },
        {"type": "divider"},
    ]
    if scenario_error is not None:
        top.append(
            section(
                f"⚠️ I couldn't read Scenario just now ({escape(scenario_error)})."
                " The figures below are from the last check that could; the next one"
                " brings them up to date once Scenario answers."
            )
        )
    if not statuses:
        top.append(
            section(
                "No budgets yet. Press *Add budget*, or type "
                "`/budget add 12k monthly` in the channel where alerts should go."
            )
        )

    shown = [line for line in recent if line.budget_id in labels]
    alert_text = "\n".join(alert_line(a, labels[a.budget_id], tz) for a in shown[:RECENT_ALERTS])
    bottom: list[Json] = [
        {"type": "divider"},
        header("Recent alerts"),
        section(alert_text or "No alerts yet."),
        {"type": "divider"},
        section(digest_lines(digests, tz)),
        *([section(watch)] if watch else []),
        context(
            "`/budget help` lists every command. Only admins can add or change budgets; "
            "`/budget list` and `/budget history` are open to everyone."
        ),
    ]

    room = MAX_BLOCKS - len(top) - len(bottom)
    budget_blocks: list[Json] = []
    visible = statuses if len(statuses) <= room else statuses[: room - 1]
    for status in visible:
        block = section(budget_line(status, tz, now, check_every))
        block["accessory"] = button("Edit", ACTION_EDIT, value=str(status.budget.id))
        budget_blocks.append(block)
    if len(visible) < len(statuses):
        budget_blocks.append(
            context(f"…and {len(statuses) - len(visible)} more: `/budget list` shows every budget.")
        )
    return {"type": "home", "blocks": [*top, *budget_blocks, *bottom]}


def digest_modal_view(digests: list[Digest], tz: str) -> Json:
    """Set the daily digest of a channel, or turn it off; shows the digests there are."""
    current = digests[0] if digests else None
    channel: Json = {
        "type": "conversations_select",
        "action_id": "channel",
        "placeholder": plain_text("Pick a channel"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if current is not None:
        channel["initial_conversation"] = current.channel_id
    off = {"text": plain_text("Turn the digest off in this channel"), "value": DIGEST_OFF}
    return {
        "type": "modal",
        "callback_id": DIGEST_CALLBACK,
        "title": plain_text("Daily digest"),
        "submit": plain_text("Save"),
        "close": plain_text("Cancel"),
        "blocks": [
            section(
                digest_lines(digests, tz)
                + "\nAt the time you pick (each day, unless `/budget digest` made it weekly or"
                " monthly): the spend since the last one, every budget's progress and a chart."
            ),
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_CHANNEL,
                "label": plain_text("Channel"),
                "element": channel,
            },
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_TIME,
                "label": plain_text(f"Time ({tz})"),
                "element": {
                    "type": "timepicker",
                    "action_id": "time",
                    "initial_time": current.at if current else DEFAULT_DIGEST_TIME,
                },
            },
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_OFF,
                "optional": True,
                "label": plain_text("Off"),
                "element": {"type": "checkboxes", "action_id": "off", "options": [off]},
            },
        ],
    }
