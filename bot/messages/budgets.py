"""Block Kit answers of `/budget`: the list, a saved budget, history, help, the removal
confirmation and the one-line confirmations. Pure: plain data in, `{"text", "blocks"}` out.

Budget labels carry a Scenario name (`scope_name`): every label, scope name and error from
Scenario is escaped once, here, where it goes into mrkdwn (the sections and the top-level
`text` alike); headers and buttons are plain text and never carry one.

Every answer stays within Slack's limits whatever the data: at most 50 blocks, and well
under the ~13k characters of blocks where Slack starts refusing a message
(`msg_blocks_too_long`) — long lists turn into compact lines and end in "…and N more".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from bot.budgets.types import PeriodKind, ScopeKind
from bot.messages.alerts import forecast_line
from bot.messages.digest import schedule_words
from bot.messages.mrkdwn import (
    SECTION_LIMIT,
    Json,
    button,
    clip,
    context,
    cu,
    duration,
    escape,
    header,
    local_time,
    percent,
    progress_bar,
    section,
    who,
)
from bot.reports.status import BudgetStatus
from bot.store.budgets import Budget
from bot.store.digests import Digest, Held

ACTION_REMOVE_CONFIRM = "budget_remove_confirm"
ACTION_REMOVE_CANCEL = "budget_remove_cancel"

MAX_BLOCKS = 50
# Slack's refusal starts near 13k characters of blocks; stay clear of it with room to spare.
MAX_CHARS = 11_000
DETAILED_UP_TO = 10  # more budgets than this are listed one line each
LINES_PER_SECTION = 8
LINE_LIMIT = 400
TEXT_LIMIT = 3000  # the top-level `text`: a notification, not the whole message
TEXT_BUDGETS = 10

# When a command or button fails on our side: nothing half-done is left, and it is logged.
OOPS = (
    "Sorry — something went wrong on my side while doing that. It has been logged;"
    " `/budget list` shows where things stand."
)

ADD_EXAMPLE = "/budget add 12k monthly project:Marketing #gen-ai-spend at 50,80,100 forecast"

_PERIOD_WORDS = {
    PeriodKind.DAILY: "daily",
    PeriodKind.WEEKLY: "weekly",
    PeriodKind.MONTHLY: "monthly",
    PeriodKind.BILLING: "per billing period",
    PeriodKind.ROLLING_24H: "per rolling 24 h",
    PeriodKind.ROLLING_7D: "per rolling 7 days",
    PeriodKind.ROLLING_30D: "per rolling 30 days",
}
_SCOPE_WORDS = {
    ScopeKind.PROJECT: "project",
    ScopeKind.USER: "user",
    ScopeKind.KEY: "API key",
    ScopeKind.MODEL: "model",
}


# ---------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------


def notice(text: str) -> Json:
    """A short answer (a refusal, an error, a confirmation) as text and one section or more."""
    return {"text": clip(text, TEXT_LIMIT), "blocks": _packed(text.split("\n"))}


def period_words(period: str) -> str:
    try:
        return _PERIOD_WORDS[PeriodKind(period)]
    except ValueError:  # a period a later release added: show it as stored
        return period


def scope_words(scope: str, name: str | None) -> str:
    """`project Marketing`, `the whole team`; from a Scope's text form (`project:proj_1`).
    mrkdwn: the name is escaped."""
    kind_text, _, ref = scope.partition(":")
    if kind_text == ScopeKind.TEAM.value:
        return "the whole team"
    try:
        kind = _SCOPE_WORDS[ScopeKind(kind_text)]
    except ValueError:
        kind = kind_text
    return f"{kind} {escape(name or ref)}"


def thresholds_words(thresholds: Sequence[int], forecast: bool) -> str:
    text = "alerts at " + ", ".join(str(t) for t in sorted(thresholds)) + " %"
    return text + (" + forecast" if forecast else "")


def mrkdwn_label(budget: Budget) -> str:
    """The budget's label as mrkdwn: `#3 Marketing monthly`, its Scenario name escaped."""
    return escape(budget.label)


def summary(budget: Budget) -> str:
    """`12,000 CU monthly · project Marketing · alerts at 50, 90, 100 % + forecast · <#C1>`"""
    return " · ".join(
        [
            f"{cu(budget.limit_cu)} {period_words(budget.period.value)}",
            scope_words(str(budget.scope), budget.scope_name),
            thresholds_words(budget.thresholds, budget.forecast),
            f"<#{budget.channel_id}>",
        ]
    )


def _spend_line(status: BudgetStatus, now: datetime) -> str:
    budget = status.budget
    if status.spend is None:
        return f"{progress_bar(0, budget.limit_cu)} spend unavailable · limit {cu(budget.limit_cu)}"
    line = (
        f"{progress_bar(status.spend, budget.limit_cu)} *{cu(status.spend)}* of"
        f" {cu(budget.limit_cu)} · *{percent(status.spend, budget.limit_cu)}* used"
    )
    if status.period is not None and not budget.period.is_rolling:
        line += f" · ⏳ {duration(status.period.time_left(now))} left"
    return line


def _forecast_line(status: BudgetStatus, tz: str) -> str | None:
    budget = status.budget
    if status.spend is None or budget.period.is_rolling:
        return None  # nothing known, or a window that never ends: nothing to project to
    if status.forecast is None:
        return "📈 Forecast: too early in the period to say"
    line = forecast_line(status.forecast, tz, status.period.end if status.period else None)
    if status.forecast.exhaustion_at is None and status.forecast.projected_cu > budget.limit_cu:
        line += " (over the limit)"
    return line


def status_text(status: BudgetStatus, tz: str, now: datetime) -> str:
    """The detailed view of one budget: what it is, spend, forecast, state."""
    budget = status.budget
    lines = [f"*{mrkdwn_label(budget)}* — {summary(budget)}", _spend_line(status, now)]
    if (forecast := _forecast_line(status, tz)) is not None:
        lines.append(forecast)
    lines.append(f"State: {status_state(status, tz, now)}")
    return clip("\n".join(lines), 1500)


def status_line(status: BudgetStatus, tz: str, now: datetime) -> str:
    """The compact view of one budget, for long lists."""
    budget = status.budget
    if status.spend is None:
        spend = f"? / {cu(budget.limit_cu)}"
    else:
        spend = (
            f"{cu(status.spend).removesuffix(' CU')} / {cu(budget.limit_cu)}"
            f" ({percent(status.spend, budget.limit_cu)})"
        )
    parts = [f"• *{mrkdwn_label(budget)}* {spend}"]
    if status.forecast is not None:
        parts.append(f"📈 {cu(status.forecast.projected_cu)}")
    parts += [status_state(status, tz, now), f"<#{budget.channel_id}>"]
    return clip(" · ".join(parts), LINE_LIMIT)


def _packed(lines: Sequence[str], *, title: str | None = None) -> list[Json]:
    """Lines joined into as few sections as fit Slack's 3,000-character section limit."""
    sections: list[Json] = []
    current = title or ""
    for raw in lines:
        line = clip(raw, LINE_LIMIT * 2)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_LIMIT:
            sections.append(section(current))
            current = line
        else:
            current = candidate
    if current:
        sections.append(section(current))
    return sections


def _size(block: Json) -> int:
    return len(json.dumps(block, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# `/budget list`
# ---------------------------------------------------------------------------------------------


def watch_summary(
    channel_id: str | None, sensitivity: str | None, episodes: int, problem: str | None = None
) -> str:
    """One line on the watch for `/budget list` and Home (mrkdwn)."""
    if channel_id is None:
        return (
            "👀 Watch: off — `/budget watch #channel` alerts on runaway keys, new keys and"
            " models, and spend at unusual hours, with no limit to set."
        )
    line = f"👀 Watch: on in <#{channel_id}>, `{sensitivity or 'normal'}` sensitivity"
    if episodes:
        line += f" · {episodes} unusual spend{'s' if episodes != 1 else ''} going on"
    if problem:
        line += (
            f" · ⚠️ delivery problem: `{escape(problem)}` — invite me to <#{channel_id}>"
            " or move the watch with `/budget watch #channel`"
        )
    return line + " · `/budget watch off` turns it off"


def budget_list(
    statuses: Sequence[BudgetStatus],
    *,
    tz: str,
    now: datetime,
    error: str | None = None,
    watch: str | None = None,
    digests: str | None = None,
) -> Json:
    """Every budget with spend, bar, % used, forecast and state; `error` says why spend is
    missing (Scenario could not be read) while the budgets are still listed; `watch` is the
    watch's line (`watch_summary`), `digests` the digests' (`digest_lines`)."""
    if not statuses:
        text = (
            "No budgets yet. An admin can add one, e.g."
            f" `{ADD_EXAMPLE}` — or `/budget add` alone for a form. `/budget help` shows more."
        )
        tail = [context(line) for line in (watch, digests) if line]
        return {"text": "No budgets yet.", "blocks": [section(text), *tail]}
    count = len(statuses)
    head: list[Json] = [header(f"Budgets ({count})")]
    if error:
        head.append(
            section(f"⚠️ Spend is unavailable right now — I couldn't read Scenario: {escape(error)}")
        )
    foot = context(f"Times in {tz} · `/budget history` for alerts and changes · `/budget help`")

    body: list[Json] = []
    if count <= DETAILED_UP_TO:
        body = [section(status_text(s, tz, now)) for s in statuses]
    else:
        body, shown = _compact(statuses, tz, now, room=MAX_BLOCKS - len(head) - 3)
        if shown < count:
            body.append(context(f"…and {count - shown} more."))

    # The notification names a few budgets; the blocks carry the rest.
    text = f"{count} budget{'s' if count != 1 else ''}: " + ", ".join(
        f"{escape(clip(s.budget.label, 80))} "
        + (percent(s.spend, s.budget.limit_cu) if s.spend is not None else "?")
        for s in statuses[:TEXT_BUDGETS]
    )
    if count > TEXT_BUDGETS:
        text += ", …"
    tail = [context(line) for line in (watch, digests) if line]
    return {"text": clip(text, TEXT_LIMIT), "blocks": [*head, *body, *tail, foot]}


def _compact(
    statuses: Sequence[BudgetStatus], tz: str, now: datetime, *, room: int
) -> tuple[list[Json], int]:
    """Sections of several one-line budgets, within `room` blocks and the character budget;
    returns the sections and how many budgets they show."""
    blocks: list[Json] = []
    used = 0
    shown = 0
    lines: list[str] = []

    def flush() -> None:
        nonlocal used
        if lines:
            block = section("\n".join(lines))
            blocks.append(block)
            used += _size(block)
            lines.clear()

    for status in statuses:
        line = status_line(status, tz, now)
        pending = sum(len(x) + 1 for x in lines)
        if lines and (len(lines) == LINES_PER_SECTION or pending + len(line) > SECTION_LIMIT):
            if len(blocks) + 2 > room:
                break  # closing this section leaves no block for the next one
            flush()
            pending = 0
        if used + pending + len(line) > MAX_CHARS:
            break
        lines.append(line)
        shown += 1
    flush()
    return blocks, shown


# ---------------------------------------------------------------------------------------------
# add / edit
# ---------------------------------------------------------------------------------------------


def saved_budget(
    status: BudgetStatus,
    *,
    tz: str,
    now: datetime,
    before: Budget | None = None,
    error: str | None = None,
    looking_back: list[Json] | None = None,
) -> Json:
    """The budget as saved, with its current spend; `before` (for an edit) adds what changed,
    `looking_back` the blocks of its backtest."""
    budget = status.budget
    if before is None:
        title = f"✅ Budget {mrkdwn_label(budget)} added"
        changed: list[str] = []
    else:
        title = f"✅ Budget {mrkdwn_label(budget)} updated"
        changed = changes(before.as_audit(), budget.as_audit())
        if not changed:
            title = f"Budget {mrkdwn_label(budget)} already was like that — nothing changed"
    blocks: list[Json] = [section(f"*{title}*")]
    if changed:
        blocks += _packed([f"• {c}" for c in changed], title="*Changed*")
    blocks.append(section(status_text(status, tz, now)))
    if error:
        blocks.append(context(f"⚠️ Current spend is unavailable: {escape(error)}"))
    blocks += looking_back or []
    blocks.append(context(f"`/budget edit {budget.id} …` changes it · `/budget list` shows all"))
    text = f"{title}: {summary(budget)}"
    return {"text": clip(text, TEXT_LIMIT), "blocks": blocks}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two audit snapshots of a budget, in words: `limit 12,000 CU →
    15,000 CU`. Tolerant: fields it does not know, or that are missing, are left out."""
    out = []
    for key, name, show in _FIELDS:
        if key not in before and key not in after:
            continue
        old, new = before.get(key), after.get(key)
        if key == "thresholds":
            old, new = sorted(old or ()), sorted(new or ())
        if key == "scope":
            old = scope_words(str(old), before.get("scope_name")) if old else None
            new = scope_words(str(new), after.get("scope_name")) if new else None
        if old != new:
            out.append(f"{name}: {_shown(show, old)} → {_shown(show, new)}")
    return out


def _shown(show: Any, value: Any) -> str:
    if value is None:
        return "–"
    try:
        return str(show(value))
    except (TypeError, ValueError):
        return str(value)


_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("limit_cu", "limit", lambda v: cu(float(v))),
    ("period", "period", period_words),
    ("scope", "scope", str),
    ("thresholds", "thresholds", lambda v: ", ".join(str(t) for t in v) + " %"),
    ("forecast", "forecast alert", lambda v: "on" if v else "off"),
    ("channel_id", "channel", lambda v: f"<#{v}>"),
)


# ---------------------------------------------------------------------------------------------
# remove
# ---------------------------------------------------------------------------------------------


def removal_question(budget: Budget) -> str:
    """What removing a budget takes with it (mrkdwn), asked before it is removed."""
    return (
        f"Remove budget *{mrkdwn_label(budget)}*? ({summary(budget)})\n"
        "Its alerts and snooze go with it; the audit trail keeps a record."
    )


def remove_confirmation(budget: Budget) -> Json:
    """The question itself is the confirmation: no extra dialog behind the Remove button."""
    text = removal_question(budget)
    remove = button("Remove", ACTION_REMOVE_CONFIRM, value=str(budget.id))
    remove["style"] = "danger"
    keep = button("Keep it", ACTION_REMOVE_CANCEL, value=str(budget.id))
    return {
        "text": clip(f"Remove budget {mrkdwn_label(budget)}?", TEXT_LIMIT),
        "blocks": [
            section(text),
            {
                "type": "actions",
                "block_id": f"budget_remove:{budget.id}",
                "elements": [remove, keep],
            },
        ],
    }


def form_refused(error: str | None, budget_id: int | None) -> Json:
    """Slack would not open the budget form (most often: the 3 s trigger had expired)."""
    typed = f"/budget edit {budget_id} 15k at 80,100" if budget_id is not None else ADD_EXAMPLE
    return notice(
        f"I couldn't open the form — Slack said `{error or 'unknown error'}`. Try again, or"
        f" type it in one go: `{typed}`."
    )


def removed(budget: Budget, actor: str) -> Json:
    return notice(
        f"🗑️ Removed budget *{mrkdwn_label(budget)}* ({summary(budget)}) — by {who(actor)}."
    )


def already_removed(budget_id: int) -> Json:
    return notice(f"Budget #{budget_id} is already gone — nothing to do.")


def kept(budget: Budget | None, budget_id: int) -> Json:
    shown = mrkdwn_label(budget) if budget is not None else f"#{budget_id}"
    return notice(f"Kept. Budget *{shown}* stays as it was.")


# ---------------------------------------------------------------------------------------------
# snooze, digest, timezone
# ---------------------------------------------------------------------------------------------


def snoozed(budget: Budget, until: datetime, tz: str, *, until_reset: bool) -> Json:
    why = ", when its current period ends" if until_reset else ""
    return notice(
        f"💤 Budget *{mrkdwn_label(budget)}* is snoozed until *{local_time(until, tz)}* {tz}{why}."
        f" No alerts until then; `/budget unsnooze {budget.id}` ends it sooner."
    )


def unsnoozed(budget: Budget, *, was_snoozed: bool) -> Json:
    if not was_snoozed:
        return notice(f"Budget *{mrkdwn_label(budget)}* wasn't snoozed — nothing changed.")
    return notice(
        f"🔔 Budget *{mrkdwn_label(budget)}* is no longer snoozed; its alerts are back on."
    )


def digest_set(
    after: Digest, tz: str, *, before: Digest | None, held: tuple[date, Held] | None = None
) -> Json:
    """`held`: the day of the next digest, and why, when by the new schedule one would go
    out later today but will not (`bot.jobs.digest.held_until`)."""
    channel, kind = after.channel_id, after.cadence.value
    quiet = after.when_empty == "skip"
    when = schedule_words(after.cadence, after.weekday, f"*{after.at}*", quiet=quiet)
    if before is None:
        text = f"📰 {kind.capitalize()} digest set: {when} ({tz}) in <#{channel}>."
    elif _schedule(before) == _schedule(after):
        text = f"The {kind} digest in <#{channel}> already goes out {when} ({tz})."
        text += " Nothing changed."
    else:
        was = (
            before.at
            if (before.cadence, before.weekday) == (after.cadence, after.weekday)
            else schedule_words(before.cadence, before.weekday, before.at)
        )
        text = f"📰 {kind.capitalize()} digest moved: {when} ({tz}) in <#{channel}> (was {was})."
    if held is not None and not text.endswith("Nothing changed."):
        text += " " + held_words(after, *held)
    return notice(text + " `/budget timezone` changes the timezone.")


def held_words(after: Digest, next_day: date, why: Held) -> str:
    """Why a digest set for later today waits for `next_day`."""
    because = (
        f"<#{after.channel_id}> already had today's: a channel gets at most one digest a day"
        if why is Held.CHANNEL_GIVEN
        else "today's was already handled"
    )
    return f"Next digest: *{next_day:%a %d %b} at {after.at}* ({because})."


def _schedule(digest: Digest) -> tuple[object, ...]:
    return (digest.local_time, digest.cadence, digest.weekday, digest.when_empty)


def digest_off(channel_id: str, *, before: Digest | None, tz: str) -> Json:
    if before is None:
        return notice(f"There was no digest in <#{channel_id}> — nothing changed.")
    was = schedule_words(before.cadence, before.weekday, before.at)
    return notice(
        f"📰 {before.cadence.value.capitalize()} digest in <#{channel_id}> turned off"
        f" (it went out {was} {tz})."
    )


def timezone_set(name: str, *, was: str, now: datetime, changed: bool) -> Json:
    local = local_time(now, name)
    if not changed:
        return notice(f"The timezone already is *{name}* (it's {local} there) — nothing changed.")
    return notice(
        f"🕰️ Timezone set to *{name}* (was {was}) — it's {local} there now."
        " Daily, weekly and monthly budgets and the digests follow it from now on."
    )


# ---------------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------------------------


def help_message(text: str) -> Json:
    return {"text": clip(text.split("\n", 1)[0], TEXT_LIMIT), "blocks": _packed(text.split("\n"))}


def status_state(status: BudgetStatus, tz: str, now: datetime) -> str:
    """ok / alerted at N % / snoozed until … / delivery problem: …"""
    if status.delivery_problem:
        return f"⚠️ delivery problem: `{status.delivery_problem}`"
    if status.snoozed_until is not None and now < status.snoozed_until:
        return f"💤 snoozed until {local_time(status.snoozed_until, tz)}"
    if status.alerted_level is not None:
        return f"🔔 alerted at {status.alerted_level} %"
    return "✅ ok"


_SENSITIVITY_WORDS = {
    "low": "`low` (fewer alerts, only big departures)",
    "normal": "`normal`",
    "high": "`high` (sooner, and more alerts)",
}


def watch_set(channel_id: str, sensitivity: str, *, before: tuple[str, str] | None) -> Json:
    """`before`: the watch's (channel, sensitivity) before, None if it was off."""
    words = _SENSITIVITY_WORDS.get(sensitivity, f"`{sensitivity}`")
    if before == (channel_id, sensitivity):
        return notice(
            f"The watch already alerts in <#{channel_id}> at {words} sensitivity. Nothing changed."
        )
    if before is None:
        return notice(
            f"👀 Watch on: alerts go to <#{channel_id}> at {words} sensitivity when an API key,"
            " a person or a model spends far above its usual rate, a key or model spends for the"
            " first time in 30 days, or a key or person spends at an hour they never do. It first"
            " reads the last 30 days of usage (at the next check, in a few minutes); nothing is"
            " alerted before that. `/budget watch off` turns it off."
        )
    return notice(f"👀 Watch updated: alerts go to <#{channel_id}> at {words} sensitivity.")


def watch_off(before: str | None) -> Json:
    if before is None:
        return notice("The watch was already off — nothing changed.")
    return notice(
        f"Watch turned off (it alerted in <#{before}>). What it had learnt is forgotten;"
        " `/budget watch` turns it on again."
    )
