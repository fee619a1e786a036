"""Watch episodes as Slack messages (SPEC §5b): the one message per episode and the replies
in its thread. Pure.

Every name in an episode comes from Scenario and is escaped here, where it meets mrkdwn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.budgets.culprits import Attribution
from bot.messages.culprits import culprit_sections
from bot.messages.mrkdwn import (
    Json,
    button,
    clip,
    context,
    cu,
    escape,
    header,
    plain_text,
    reply,
    section,
    slack_date,
)
from bot.store.alerts import EpisodeFinding

ACTION_EXPECTED = "watch_expected"
ACTION_WATCH_SNOOZE = "watch_snooze_24h"
ACTION_WATCH_OPEN = "watch_open_in_scenario"
ACTION_REVOKE = "watch_revoke_key"
REVOKE_CALLBACK = "watch_revoke_key_form"
STATUS_BLOCK = "watch_status"


@dataclass(frozen=True, slots=True)
class EpisodeView:
    alert_id: int
    opened_at: datetime
    finding: EpisodeFinding
    spend_cu: float  # the latest hour judged (new entity: all it spent since it started)
    tz: str
    attribution: Attribution
    open_url: str  # the entity's page in Scenario (API keys, the model), else the team's
    ended_at: datetime | None = None
    expected: tuple[str, datetime] | None = None  # who, until
    snoozed: tuple[str, datetime] | None = None  # who, until


def _local(at: datetime, tz: str, fmt: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime(fmt)


def times_usual(spend: float, usual: float) -> str:
    """`38×`; for less than ten times, one decimal (`3.4×`)."""
    ratio = spend / usual
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def episode_title(finding: EpisodeFinding, spend: float) -> str:
    """The plain title (a header parses nothing)."""
    name = finding.name or finding.entity
    match finding.rule:
        case "new":
            return f"🆕 {name} started spending: first spend in 30 days"
        case "off-hours":
            return f"🌙 {name} is spending at an hour it never does"
    if finding.usual_cu > 0:
        return f"🚨 {name} is spending {times_usual(spend, finding.usual_cu)} its usual rate"
    return f"🚨 {name} is spending far above its usual rate"


def episode_message(view: EpisodeView) -> Json:
    finding, tz = view.finding, view.tz
    # Once it is over, "the last hour" means nothing: its busiest hour tells the story.
    spend = finding.peak_cu if view.ended_at else view.spend_cu
    hour_was = "in its busiest hour" if view.ended_at else "in the last hour"
    title = episode_title(finding, spend)
    since = _local(finding.since, tz, "%a %H:%M")
    match finding.rule:
        case "new":
            what = f"*{cu(spend)}* since {since} ({tz}), after 30 days without any spend."
        case "off-hours":
            hour = _local(finding.since, tz, "%H:00")
            what = (
                f"*{cu(spend)}* {hour_was}, at {hour} ({tz}): it has never spent at this time"
                " of day."
            )
        case _:
            slot = _local(view.opened_at, tz, "%A %H:00")
            ratio = (
                f" — {times_usual(spend, finding.usual_cu)} its usual for {slot}"
                f" ({cu(finding.usual_cu)})"
                if finding.usual_cu > 0
                else ""
            )
            what = f"*{cu(spend)}* {hour_was}{ratio}. Unusual since {since} ({tz})."
    lines = [what]
    if not view.ended_at and finding.peak_cu > spend:
        lines.append(f"Busiest hour so far: {cu(finding.peak_cu)}.")
    if finding.projects:
        lines.append("Projects: " + ", ".join(escape(p) for p in finding.projects))
    if finding.explains:
        lines.append("Also lifted: " + ", ".join(escape(e) for e in finding.explains))
    blocks: list[Json] = [header(title), section("\n".join(lines))]
    # Shares of what the cause spent since it began (the activity read when it was found).
    spent = sum(c.cu for c in view.attribution.users)
    blocks += culprit_sections(view.attribution, spent)
    status = []
    if view.ended_at is not None:
        status.append(f"✅ Back to usual · {slack_date(view.ended_at, tz)}")
    if view.expected is not None:
        who, until = view.expected
        status.append(f"👍 Marked as expected by <@{who}>: quiet until {slack_date(until, tz)}")
    if view.snoozed is not None:
        who, until = view.snoozed
        status.append(f"💤 Watch snoozed by <@{who}> until {slack_date(until, tz)}")
    if finding.revoked is not None:
        who, at = finding.revoked
        status.append(f"🔒 Key revoked by <@{who}> · {slack_date(at, tz)}")
    if status:
        blocks.append(context("\n".join(status)) | {"block_id": STATUS_BLOCK})
    blocks.append(
        {
            "type": "actions",
            "block_id": f"watch:{view.alert_id}",
            "elements": [
                button("Expected", ACTION_EXPECTED, value=str(view.alert_id)),
                button("Snooze 24 h", ACTION_WATCH_SNOOZE, value=str(view.alert_id)),
                button("Open in Scenario", ACTION_WATCH_OPEN, url=view.open_url),
                *(
                    [
                        button("Revoke key", ACTION_REVOKE, value=str(view.alert_id))
                        | {"style": "danger"}
                    ]
                    if finding.entity.startswith("key:") and finding.revoked is None
                    else []
                ),
            ],
        }
    )
    text = clip(f"{escape(title)} — {what}", 3000)
    return {"text": text, "blocks": blocks}


def ended_reply(finding: EpisodeFinding, tz: str) -> Json:
    name = escape(finding.name or finding.entity)
    since = _local(finding.since, tz, "%a %H:%M")
    busiest = "all it spent" if finding.rule == "new" else "its busiest hour"
    return reply(
        f"✅ {name} is back to usual (unusual since {since}, {tz});"
        f" {busiest} cost {cu(finding.peak_cu)}."
    )


def expected_reply(actor: str, finding: EpisodeFinding, until: datetime, tz: str) -> Json:
    name = escape(finding.name or finding.entity)
    what = {
        "new": "its new spend",
        "off-hours": "spend at unusual hours",
    }.get(finding.rule, "an unusual rate")
    return reply(
        f"👍 <@{actor}> marked this as expected: no alert about {what} of {name}"
        f" until {slack_date(until, tz)}."
    )


def revoked_reply(actor: str, key: str, project: str) -> Json:
    return reply(
        f"🔒 <@{actor}> revoked the API key 🔑 {escape(key)} of project {escape(project)}:"
        " anything that uses it stops working."
    )


def _revoke_modal(title: str, text: str, **extra: Json | str) -> Json:
    return {
        "type": "modal",
        "callback_id": REVOKE_CALLBACK,
        "title": plain_text(title),
        "close": plain_text("Close"),
        "blocks": [section(text)],
        **extra,
    }


def revoke_view(metadata: str, key: str, project: str) -> Json:
    """The confirmation: it names the key and its project (names from Scenario: escaped)."""
    text = (
        f"Revoke the API key *🔑 {escape(key)}* of project *{escape(project)}*?\n\n"
        "Scenario deletes it at once: every script, pipeline or plugin that uses it stops"
        " working, and it cannot be brought back (a new key must be made in Scenario)."
    )
    return _revoke_modal(
        "Revoke API key",
        text,
        submit=plain_text("Revoke key"),
        close=plain_text("Cancel"),
        private_metadata=metadata,
    )


def revoking_view() -> Json:
    return _revoke_modal("Revoke API key", ":hourglass_flowing_sand: Revoking the key in Scenario…")


def revoked_view(key: str) -> Json:
    return _revoke_modal("Key revoked", f"🔒 The API key 🔑 {escape(key)} is revoked.")


def revoke_failed_view(problem: str) -> Json:
    """`problem` is mrkdwn, already escaped."""
    return _revoke_modal("Not revoked", f"⚠️ {problem} Nothing was changed.")
