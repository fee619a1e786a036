"""The budget form and the one-message modals, as views. Pure.

Design of the scope field: a static select of the kind (team, project, member, API key,
model) and a plain-text name. External selects would list Scenario's names as one types, but
they need an options endpoint and a Scenario call per keystroke; the name is instead matched
like in `/budget add` (ID, exact name, unique prefix), and a name that matches nothing or
several things is answered next to the field with the candidates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from bot.budgets.types import DEFAULT_THRESHOLDS, PeriodKind, ScopeKind
from bot.messages.mrkdwn import Json, context, cu, escape, plain_text, section
from bot.messages.terminal import mrkdwn_to_text
from bot.store.budgets import Budget

CALLBACK_ID = "budget_modal"


BLOCK_SCOPE_KIND = "budget_scope_kind"


BLOCK_SCOPE_NAME = "budget_scope_name"


BLOCK_PERIOD = "budget_period"


BLOCK_LIMIT = "budget_limit"


BLOCK_THRESHOLDS = "budget_thresholds"


BLOCK_FORECAST = "budget_forecast"


BLOCK_CHANNEL = "budget_channel"


BLOCK_PREVIEW = "budget_backtest"
# Each change of a field the backtest depends on shows it again under the form (SPEC §4).
TYPED = ["on_enter_pressed", "on_character_entered"]
PREVIEW_HINT = "📊 Type a limit to see how this budget would have done over the last 30 days."


FIRST_BLOCK = BLOCK_SCOPE_KIND


FORECAST_ON = "forecast"


SCOPE_LABELS: dict[ScopeKind, str] = {
    ScopeKind.TEAM: "Whole team",
    ScopeKind.PROJECT: "Project",
    ScopeKind.USER: "Member (email)",
    ScopeKind.KEY: "API key",
    ScopeKind.MODEL: "Model",
}


PERIOD_LABELS: dict[PeriodKind, str] = {
    PeriodKind.DAILY: "Daily (calendar day)",
    PeriodKind.WEEKLY: "Weekly (calendar week)",
    PeriodKind.MONTHLY: "Monthly (calendar month)",
    PeriodKind.BILLING: "Billing period (Scenario plan)",
    PeriodKind.ROLLING_24H: "Rolling 24 hours",
    PeriodKind.ROLLING_7D: "Rolling 7 days",
    PeriodKind.ROLLING_30D: "Rolling 30 days",
}


@dataclass(frozen=True, slots=True)
class Metadata:
    """What the form remembers between opening and submission (`private_metadata`)."""

    team_id: str
    channel_id: str
    budget_id: int | None = None
    from_home: bool = False

    def dump(self) -> str:
        data = {"team": self.team_id, "channel": self.channel_id, "budget": self.budget_id}
        if self.from_home:
            data["home"] = True
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> Metadata:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        budget = data.get("budget")
        return cls(
            team_id=str(data.get("team") or ""),
            channel_id=str(data.get("channel") or ""),
            budget_id=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
            from_home=data.get("home") is True,
        )


def _option(label: str, value: str) -> Json:
    return {"text": plain_text(label), "value": value}


def _input(block_id: str, label: str, element: Json, *, hint: str | None = None) -> Json:
    block: Json = {
        "type": "input",
        "block_id": block_id,
        "label": plain_text(label),
        "element": element,
    }
    if hint:
        block["hint"] = plain_text(hint)
    return block


@dataclass(frozen=True, slots=True)
class RaiseTo:
    """The edit form opened by an alert's Raise budget button: the limit it proposes."""

    limit_cu: float | None  # None: none proposed, the budget's own limit is shown
    why: str  # e.g. "the forecast's high end, rounded up"; with no limit, why not


def budget_modal_view(
    *,
    team_id: str,
    channel_id: str,
    budget: Budget | None,
    from_home: bool = False,
    raise_to: RaiseTo | None = None,
) -> Json:
    """The add form (empty but for defaults) or the edit form (filled from ``budget``; with
    ``raise_to``, its limit is the one proposed)."""
    scope_kind = budget.scope.kind if budget else ScopeKind.TEAM
    period = budget.period if budget else PeriodKind.MONTHLY
    scope_options = [_option(label, kind.value) for kind, label in SCOPE_LABELS.items()]
    period_options = [_option(label, kind.value) for kind, label in PERIOD_LABELS.items()]

    name_element: Json = {
        "type": "plain_text_input",
        "action_id": "name",
        "dispatch_action_config": {"trigger_actions_on": TYPED},
        "max_length": 200,
        "placeholder": plain_text("e.g. Marketing, ana@example.com, CI pipeline"),
    }
    if budget and budget.scope.ref:
        name_element["initial_value"] = budget.scope_name or budget.scope.ref
    name_block = _input(
        BLOCK_SCOPE_NAME,
        "Name or ID",
        name_element,
        hint="The project's or model's name, the member's email or the API key's name (or "
        "its ID). Leave empty for the whole team.",
    )
    name_block["optional"] = True

    limit_element: Json = {
        "type": "plain_text_input",
        "action_id": "limit",
        "dispatch_action_config": {"trigger_actions_on": TYPED},
        "max_length": 30,
        "placeholder": plain_text("e.g. 12k, 12.5k or 1,500"),
    }
    if budget:
        proposed = raise_to.limit_cu if raise_to else None
        limit_element["initial_value"] = _limit_text(
            budget.limit_cu if proposed is None else proposed
        )

    forecast_option = _option(
        "Also alert when the period is projected to end over the limit", FORECAST_ON
    )
    forecast_element: Json = {
        "type": "checkboxes",
        "action_id": "forecast",
        "options": [forecast_option],
    }
    if budget and budget.forecast:
        forecast_element["initial_options"] = [forecast_option]
    forecast_block = _input(BLOCK_FORECAST, "Forecast", forecast_element)
    forecast_block |= {"optional": True, "dispatch_action": True}

    channel_element: Json = {
        "type": "conversations_select",
        "action_id": "channel",
        "placeholder": plain_text("Pick a channel"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    initial_channel = budget.channel_id if budget else channel_id
    if initial_channel:
        channel_element["initial_conversation"] = initial_channel
    else:
        channel_element["default_to_current_conversation"] = True

    form: list[Json] = []
    if budget and raise_to and raise_to.limit_cu is None:
        form.append(
            context(
                f"{raise_to.why} Editing *{escape(budget.label)}* as it is now, at"
                f" {cu(budget.limit_cu)}. Changes go to the audit trail."
            )
        )
    elif budget and raise_to:
        form.append(
            context(
                f"Raising *{escape(budget.label)}* from {cu(budget.limit_cu)}: the limit below"
                f" is {raise_to.why}. Change it if you like; changes go to the audit trail."
            )
        )
    elif budget:
        form.append(context(f"Editing *{escape(budget.label)}*. Changes go to the audit trail."))
    form += [
        _input(
            BLOCK_SCOPE_KIND,
            "What it counts",
            {
                "type": "static_select",
                "action_id": "kind",
                "options": scope_options,
                "initial_option": _option(SCOPE_LABELS[scope_kind], scope_kind.value),
            },
        )
        | {"dispatch_action": True},
        name_block | {"dispatch_action": True},
        _input(
            BLOCK_PERIOD,
            "Period",
            {
                "type": "static_select",
                "action_id": "period",
                "options": period_options,
                "initial_option": _option(PERIOD_LABELS[period], period.value),
            },
            hint="Calendar periods follow the workspace timezone.",
        )
        | {"dispatch_action": True},
        _input(BLOCK_LIMIT, "Limit (CU)", limit_element) | {"dispatch_action": True},
        _input(
            BLOCK_THRESHOLDS,
            "Alert at (% of the limit)",
            {
                "type": "plain_text_input",
                "action_id": "thresholds",
                "dispatch_action_config": {"trigger_actions_on": TYPED},
                "max_length": 100,
                "initial_value": ",".join(
                    str(t) for t in (budget.thresholds if budget else DEFAULT_THRESHOLDS)
                ),
            },
            hint="Whole percentages from 1 to 1000, separated by commas.",
        )
        | {"dispatch_action": True},
        forecast_block,
        _input(BLOCK_CHANNEL, "Alerts go to", channel_element),
        preview_block(PREVIEW_HINT),
    ]
    title = "New budget"
    if budget:
        verb = "Raise" if raise_to and raise_to.limit_cu is not None else "Edit"
        title = f"{verb} budget #{budget.id}"
        if len(title) > 24:
            title = f"{verb} budget"
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": plain_text(title),
        "submit": plain_text("Save"),
        "close": plain_text("Cancel"),
        "private_metadata": Metadata(
            team_id, channel_id, budget.id if budget else None, from_home
        ).dump(),
        "blocks": form,
    }


def preview_block(text: str) -> Json:
    return context(text) | {"block_id": BLOCK_PREVIEW}


def _limit_text(limit: float) -> str:
    """The stored limit as the form shows it: `12000`, `12.5` — what parse_limit reads back."""
    value = Decimal(str(limit))
    return str(int(value)) if value == value.to_integral_value() else f"{value.normalize():f}"


def message_view(title: str, text: str) -> Json:
    """A one-message modal: confirmations and explanations."""
    return {
        "type": "modal",
        "title": plain_text(title[:24]),
        "close": plain_text("Done"),
        "blocks": [section(text)],
    }


def saved_view(budget: Budget, *, added: bool) -> Json:
    thresholds = ", ".join(f"{t} %" for t in budget.thresholds)
    lines = [
        f"✅ *Budget {escape(budget.label)}* {'added' if added else 'saved'}.",
        f"{cu(budget.limit_cu)} · {PERIOD_LABELS[budget.period].lower()}"
        f" · alerts at {thresholds}" + (" · forecast alert on" if budget.forecast else ""),
        f"Alerts go to <#{budget.channel_id}> — invite me there if I'm not in it yet"
        " (`/invite @Budget Bot`).",
    ]
    return message_view("Budget added" if added else "Budget saved", "\n".join(lines))


def unchanged_view(budget: Budget) -> Json:
    return message_view("Nothing changed", f"Budget *{escape(budget.label)}* is as it was.")


def field_error(message: str) -> str:
    """A mrkdwn message made fit for a field error, which Slack shows as plain text: names
    escaped for mrkdwn (`&lt;`) are shown as they are again."""
    text = re.sub(r"`([^`]*)`", r"“\1”", message)
    # Shown next to the channel picker, which names the channel already.
    text = re.sub(r"<#[A-Z0-9]+(\|[^>]*)?>", "this channel", text)
    return mrkdwn_to_text(re.sub(r"\*([^*\n]+)\*", r"\1", text))[:500]
