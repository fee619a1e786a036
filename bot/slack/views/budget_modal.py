"""The budget form: add or edit a budget with fields instead of command text (SPEC §4).

Opened by `/budget add` (no options), `/budget edit <id>` (only the ID) and the Home tab's
buttons, through :func:`open_budget_modal`. On submission everything that can go wrong is
found *before* the acknowledgement, because Slack shows field errors only when they come
back in it: the submitter's rights, each field, the scope name (looked up in Scenario with a
bounded wait, so the answer stays within Slack's 3 s), and the save itself. The modal then
turns into a confirmation ("update"), which works wherever the form was opened — a channel
or the Home tab — needs no extra scope, and cannot get lost like a DM (the manifest turns the
Messages tab off) or an ephemeral message (Home has no channel; the bot may not be in it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.budgets.evaluate import BudgetRule
from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.commands.budget import parse_limit, parse_thresholds
from bot.commands.requests import ChannelRef, GrammarError, ScopeRef
from bot.config import ConfigError
from bot.jobs.delivery import slack_error
from bot.messages.backtest import form_preview_text
from bot.messages.modals import (
    BLOCK_CHANNEL,
    BLOCK_FORECAST,
    BLOCK_LIMIT,
    BLOCK_PERIOD,
    BLOCK_PREVIEW,
    BLOCK_SCOPE_KIND,
    BLOCK_SCOPE_NAME,
    BLOCK_THRESHOLDS,
    CALLBACK_ID,
    FIRST_BLOCK,
    FORECAST_ON,
    PREVIEW_HINT,
    Metadata,
    RaiseTo,
    budget_modal_view,
    field_error,
    preview_block,
    saved_view,
    unchanged_view,
)
from bot.messages.mrkdwn import Json, escape
from bot.reports.backtest import History, read_history, replay_history
from bot.scenario.errors import ScenarioError
from bot.slack.admins import form_admin_problem
from bot.slack.changes import (
    ChannelRefusal,
    Draft,
    Refusal,
    add_budget,
    edit_budget,
    resolve_scope,
)
from bot.slack.events.home import publish_home
from bot.slack.payloads import interaction
from bot.store.budgets import Budget, BudgetNotFound, get_budget

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)

T = TypeVar("T")


_SCOPE_WHAT: dict[ScopeKind, str] = {
    ScopeKind.PROJECT: "project",
    ScopeKind.USER: "member",
    ScopeKind.KEY: "API key",
    ScopeKind.MODEL: "model",
}

# Slack waits 3 s for the acknowledgement; what is checked before it must fit with room for
# the network. Module attributes, so that a test can shorten them.
SUBMIT_WITHIN = 2.4  # seconds for everything before the acknowledgement
RESOLVE_WITHIN = 2.0  # seconds for the Scenario name lookup within that


NOT_ADMIN = (
    "Only workspace admins and owners (or people in BUDGET_BOT_ADMINS) can add or change "
    "budgets. Nothing was saved."
)
SCENARIO_SLOW = (
    "Scenario is slow to answer, so I couldn't check this name yet. Press Save again in a moment."
)
SAVE_SLOW = (
    "Checking this took longer than Slack waits, so nothing was saved. Press Save again in a "
    "moment."
)


# ---------------------------------------------------------------------------------------------
# Reading and checking a submission (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Form:
    """The submitted values, as Slack sent them."""

    scope_kind: str | None
    scope_name: str
    period: str | None
    limit: str
    thresholds: str
    forecast: bool
    channel: str | None


def read_form(values: dict[str, dict[str, Json]]) -> Form:
    """`view.state.values` → Form; missing blocks read as empty (never a KeyError)."""

    def element(block_id: str) -> Json:
        found = values.get(block_id) or {}
        return next(iter(found.values()), {}) if found else {}

    def selected(block_id: str) -> str | None:
        option = element(block_id).get("selected_option") or {}
        return option.get("value")

    forecast = element(BLOCK_FORECAST).get("selected_options") or []
    return Form(
        scope_kind=selected(BLOCK_SCOPE_KIND),
        scope_name=(element(BLOCK_SCOPE_NAME).get("value") or "").strip(),
        period=selected(BLOCK_PERIOD),
        limit=element(BLOCK_LIMIT).get("value") or "",
        thresholds=element(BLOCK_THRESHOLDS).get("value") or "",
        forecast=any(o.get("value") == FORECAST_ON for o in forecast),
        channel=element(BLOCK_CHANNEL).get("selected_conversation"),
    )


def typed_name(kind: ScopeKind, name: str) -> str:
    """The scope name as the budget reads it: "@ana" is a natural way to name someone. One
    place for it, so that the preview replays the member the submission will save."""
    return name.removeprefix("@") if kind is ScopeKind.USER else name


@dataclass(frozen=True, slots=True)
class Checked:
    """A form whose every field is valid (the scope name is not looked up yet)."""

    scope: ScopeRef
    period: PeriodKind
    limit: Decimal
    thresholds: tuple[int, ...]
    forecast: bool
    channel: str


def check_form(form: Form) -> Checked | dict[str, str]:
    """The valid values, or an error per block ID (all at once, so one Save shows them all)."""
    errors: dict[str, str] = {}
    scope: ScopeRef | None = None
    try:
        kind = ScopeKind(form.scope_kind or "")
    except ValueError:
        errors[BLOCK_SCOPE_KIND] = "Pick what the budget counts."
    else:
        name = typed_name(kind, form.scope_name)
        if kind is ScopeKind.TEAM and name:
            errors[BLOCK_SCOPE_NAME] = (
                "The whole team needs no name: clear this field, or pick Project, Member, "
                "API key or Model above."
            )
        elif kind is not ScopeKind.TEAM and not name:
            errors[BLOCK_SCOPE_NAME] = f"Type the {_SCOPE_WHAT[kind]}'s name or ID."
        else:
            scope = ScopeRef(kind, name or None)
    try:
        period = PeriodKind(form.period or "")
    except ValueError:
        errors[BLOCK_PERIOD] = "Pick a period."
    limit = parse_limit(form.limit)
    if isinstance(limit, GrammarError):
        errors[BLOCK_LIMIT] = field_error(limit.message)
    thresholds = parse_thresholds(form.thresholds)
    if isinstance(thresholds, GrammarError):
        errors[BLOCK_THRESHOLDS] = field_error(thresholds.message)
    if not form.channel:
        errors[BLOCK_CHANNEL] = "Pick the channel where alerts go."
    if errors:
        return errors
    assert scope is not None and not isinstance(limit, GrammarError)
    assert not isinstance(thresholds, GrammarError) and form.channel
    return Checked(scope, period, limit, thresholds, form.forecast, form.channel)


def draft_for(checked: Checked, budget: Budget | None) -> Draft:
    """Everything for a new budget; for an edit only what differs from ``budget``, so that an
    untouched scope is not looked up again and an untouched form changes (and audits) nothing."""
    if budget is None:
        return Draft(
            limit=checked.limit,
            period=checked.period,
            scope=checked.scope,
            channel=ChannelRef(id=checked.channel),
            thresholds=checked.thresholds,
            forecast=checked.forecast,
        )
    same_scope = checked.scope.kind is budget.scope.kind and (
        checked.scope.text is None
        or checked.scope.text.casefold()
        in {n.casefold() for n in (budget.scope_name, budget.scope.ref) if n}
    )
    return Draft(
        limit=checked.limit if float(checked.limit) != budget.limit_cu else None,
        period=checked.period if checked.period is not budget.period else None,
        scope=None if same_scope else checked.scope,
        channel=ChannelRef(id=checked.channel) if checked.channel != budget.channel_id else None,
        thresholds=(checked.thresholds if checked.thresholds != tuple(budget.thresholds) else None),
        forecast=checked.forecast if checked.forecast != budget.forecast else None,
    )


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------

# Background work must be referenced until it ends (the event loop keeps only weak ones).
_background: set[asyncio.Task[Any]] = set()


def _spawn(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_forget)
    return task


def _forget(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        # Whoever awaited it has seen it; a lone warm-up failing is retried on submission, a
        # history read by the next preview.
        log.debug("background work failed: %s", exc)


async def open_budget_modal(
    client: AsyncWebClient,
    trigger_id: str,
    deps: Deps,
    team_id: str,
    channel_id: str,
    budget: Budget | None,
    *,
    from_home: bool = False,
    raise_to: RaiseTo | None = None,
) -> None:
    """Open the add form (``budget`` None) or the edit form; call it right after `ack()` —
    a trigger ID lasts 3 s. Raises SlackApiError when Slack refuses (e.g. an expired trigger).

    ``channel_id`` is where the command was typed (the default alert channel; "" from Home).
    ``from_home`` makes a successful save republish the submitter's Home tab; ``raise_to``
    fills in the limit an alert's Raise budget button proposes.
    """
    view = budget_modal_view(
        team_id=team_id,
        channel_id=channel_id,
        budget=budget,
        from_home=from_home,
        raise_to=raise_to,
    )
    # Load Scenario's names while the person types, so that the lookup on Save is instant;
    # started first, so that the form's background work is known from the moment it opens.
    _spawn(_warm_directory(deps, team_id))
    await client.views_open(trigger_id=trigger_id, view=view)


async def _warm_directory(deps: Deps, team_id: str) -> None:
    await deps.directory.get(await deps.scenario_for(team_id))


async def submit_budget_modal(
    ack: AsyncAck, body: Json, client: AsyncWebClient, deps: Deps
) -> None:
    """Check, resolve and save before acknowledging (errors must travel in the ack)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SUBMIT_WITHIN

    def left() -> float:
        return max(0.0, deadline - loop.time())

    async def refuse(errors: dict[str, str]) -> None:
        await ack(response_action="errors", errors=errors)

    view = body.get("view") or {}
    # A preview still to come would re-render the form and wipe the errors this answer shows.
    if (pending := _previews.pop(str(view.get("id") or ""), None)) is not None:
        pending.cancel()
    meta = Metadata.load(view.get("private_metadata"))
    submitted = interaction(body)
    team_id, user_id = submitted.team_id or meta.team_id, submitted.user_id
    problem = await form_admin_problem(
        deps.admins, client, team_id, user_id, within=left(), refused=NOT_ADMIN
    )
    if problem is not None:
        return await refuse({FIRST_BLOCK: problem})

    checked = check_form(read_form((view.get("state") or {}).get("values") or {}))
    if isinstance(checked, dict):
        return await refuse(checked)

    budget = None
    if meta.budget_id is not None:
        try:
            budget = get_budget(deps.db, team_id, meta.budget_id)
        except BudgetNotFound:
            return await refuse(
                {FIRST_BLOCK: f"Budget #{meta.budget_id} no longer exists. Nothing was saved."}
            )
    draft = draft_for(checked, budget)
    if budget is not None and draft == Draft():
        return await ack(response_action="update", view=unchanged_view(budget))

    if draft.scope is not None and draft.scope.kind is not ScopeKind.TEAM:
        # Shielded: when Scenario is slow the lookup goes on and fills the directory cache,
        # so that pressing Save again a moment later succeeds.
        lookup = _spawn(resolve_scope(deps, team_id, draft.scope, client))
        try:
            await asyncio.wait_for(asyncio.shield(lookup), min(RESOLVE_WITHIN, left()))
        except TimeoutError:
            return await refuse({BLOCK_SCOPE_NAME: SCENARIO_SLOW})
        except Refusal as refusal:
            return await refuse({BLOCK_SCOPE_NAME: field_error(str(refusal))})

    # The save looks the name up again (from the cache now) and writes synchronously, last:
    # a timeout can only cancel it before the write, so "try again" never makes a duplicate.
    if budget is None:
        save = add_budget(
            deps,
            client,
            team_id=team_id,
            user_id=user_id,
            draft=draft,
            default_channel=checked.channel,
        )
    else:
        save = edit_budget(
            deps, client, team_id=team_id, user_id=user_id, budget_id=budget.id, draft=draft
        )
    try:
        saved = await asyncio.wait_for(save, max(left(), 0.2))
    except TimeoutError:
        # The name is known by now (from the cache): what was slow is Slack's channel check
        # or the rights check before it, not Scenario.
        return await refuse({FIRST_BLOCK: SAVE_SLOW})
    except ChannelRefusal as refusal:
        return await refuse({BLOCK_CHANNEL: field_error(str(refusal))})
    except Refusal as refusal:
        return await refuse({FIRST_BLOCK: field_error(str(refusal))})
    await ack(response_action="update", view=saved_view(saved, added=budget is None))
    log.info("budget %s %s by %s", saved.id, "added" if budget is None else "edited", user_id)
    if budget is not None:
        await deps.deliver_now(team_id)  # its alert's message shows the change at once

    if meta.from_home:
        await publish_home(client, deps, team_id, user_id)


# ---------------------------------------------------------------------------------------------
# The backtest under the form (SPEC §4), updated as the limit or the period changes
# ---------------------------------------------------------------------------------------------

# A person typing "12000" sends a change per character: only a change followed by this much
# quiet is previewed. Module attribute, so that a test can change it.
PREVIEW_AFTER = 0.8  # seconds
HISTORY_FOR = timedelta(minutes=5)  # one history serves every limit tried meanwhile

# Whose spend a history is: the workspace, the Scenario credentials it was read with (after
# `/budget connect` replaces them, figures read with the old key — maybe of another Scenario
# team — are not shown), the scope, the period and the timezone.
HistoryKey = tuple[str, str | None, str, Scope, PeriodKind, str]


@dataclass(frozen=True, slots=True)
class _Read:
    """A history read, in flight or done, shared by every preview of its key."""

    started: datetime
    task: asyncio.Task[History]


_histories: dict[HistoryKey, _Read] = {}
_previews: dict[str, asyncio.Task[None]] = {}  # view ID → its latest preview
# View ID → (the hash our latest preview update replaced, the one it got), oldest first.
_updated: dict[str, tuple[str, str]] = {}
KEEP_UPDATED = 1000


async def preview_changed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    """Start the preview of what the form says now. A newer change of the same form cancels
    the older preview (the person is still typing): its wait, or its wait for the history —
    never the history read, which the newer preview goes on with, nor a views.update
    already sent, whose new hash the newer preview needs."""
    view = body.get("view") or {}
    view_id = str(view.get("id") or "")
    if not view_id:
        return
    if (previous := _previews.pop(view_id, None)) is not None:
        previous.cancel()
    task = _spawn(_preview(body, client, deps))
    _previews[view_id] = task
    task.add_done_callback(
        lambda done: _previews.pop(view_id, None) if _previews.get(view_id) is done else None
    )


async def _preview(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    # Wait for a pause in the typing: a newer change cancels this wait, and nothing is read
    # or replayed for a value that was typed past.
    await asyncio.sleep(PREVIEW_AFTER)
    view = body.get("view") or {}
    meta = Metadata.load(view.get("private_metadata"))
    team_id = interaction(body).team_id or meta.team_id
    form = read_form((view.get("state") or {}).get("values") or {})
    text = await preview_text(deps, client, team_id, form)
    blocks = [
        preview_block(text) if block.get("block_id") == BLOCK_PREVIEW else block
        for block in view.get("blocks") or []
    ]
    kept = {k: view[k] for k in ("type", "callback_id", "title", "submit", "close") if k in view}
    view_id = str(view["id"])
    sent_hash = view.get("hash")
    replaced = _updated.get(view_id)
    if replaced is not None and replaced[0] == sent_hash:
        # The change was made before our own last update of the form landed: its hash is
        # the one that update replaced, and Slack would refuse this newer preview for it.
        sent_hash = replaced[1]
    update = {**kept, "private_metadata": view.get("private_metadata"), "blocks": blocks}
    # Once sent, an update lands whether or not a newer change cancels this preview: it
    # goes on, shielded, so that the hash it gets is known to the preview that follows.
    await asyncio.shield(_spawn(_update_form(client, view_id, sent_hash, update)))


async def _update_form(
    client: AsyncWebClient, view_id: str, sent_hash: str | None, update: Json
) -> None:
    try:
        # The hash makes Slack refuse an update of a form changed since: a newer preview
        # follows that change.
        answer = await client.views_update(view_id=view_id, hash=sent_hash, view=update)
    except SlackApiError as exc:
        log.info("backtest preview not shown: %s", slack_error(exc))
        return
    new_hash = (answer.get("view") or {}).get("hash")
    if sent_hash and new_hash:
        _updated.pop(view_id, None)
        _updated[view_id] = (sent_hash, new_hash)
        while len(_updated) > KEEP_UPDATED:  # forms closed long ago: the oldest go first
            _updated.pop(next(iter(_updated)))


async def preview_text(deps: Deps, client: AsyncWebClient, team_id: str, form: Form) -> str:
    """The backtest of the form as it stands, or what it still needs (mrkdwn)."""
    limit = parse_limit(form.limit)
    try:
        period = PeriodKind(form.period or "")
    except ValueError:
        return PREVIEW_HINT
    if isinstance(limit, GrammarError):
        return PREVIEW_HINT
    if period is PeriodKind.BILLING:
        return "📊 No look back for billing budgets: past plan periods aren't known."
    thresholds = parse_thresholds(form.thresholds)
    if isinstance(thresholds, GrammarError):
        return "📊 Fix the thresholds to see how the budget would have done."
    try:
        kind = ScopeKind(form.scope_kind or "")
    except ValueError:
        return PREVIEW_HINT
    scope: Scope = TEAM
    name: str | None = None
    try:
        if kind is not ScopeKind.TEAM:
            typed = typed_name(kind, form.scope_name)
            if not typed:
                return f"📊 Name the {_SCOPE_WHAT[kind]} to see how the budget would have done."
            # Shielded: a newer change cancelling this preview leaves the directory loading
            # for the preview that replaces it.
            lookup = _spawn(resolve_scope(deps, team_id, ScopeRef(kind, typed), client))
            scope, name = await asyncio.shield(lookup)
        tz = deps.timezone_of(team_id)
        history = await _history(deps, team_id, scope, period, tz)
    except Refusal as refusal:
        return f"📊 {refusal}"
    except ScenarioError as exc:
        return f"📊 I couldn't look back at the last 30 days: {escape(exc.message)}"
    except ConfigError as exc:  # no Scenario credentials, or not connected yet
        return f"📊 I can't look back without Scenario: {escape(str(exc))}"
    rule = BudgetRule(float(limit), thresholds, form.forecast)
    found = replay_history(history, rule, period, tz)
    return form_preview_text(found, rule, period, scope, name, tz)


async def _history(deps: Deps, team_id: str, scope: Scope, period: PeriodKind, tz: str) -> History:
    """The history of this key, read once for every preview within HISTORY_FOR: the first
    starts the read as a task of its own, and every preview — that one included — awaits
    it shielded, so that a preview cancelled by a newer change leaves it going."""
    scenario = await deps.scenario_for(team_id)
    now = deps.clock()
    for old in [k for k, r in _histories.items() if now - r.started > HISTORY_FOR]:
        del _histories[old]
    key: HistoryKey = (team_id, scenario.team_id, scenario.key_fingerprint, scope, period, tz)
    read = _histories.get(key)
    if read is None:
        task = _spawn(read_history(scenario, scope, period, tz, now))
        read = _histories[key] = _Read(now, task)
        task.add_done_callback(lambda done: _drop_failed(key, done))
    return await asyncio.shield(read.task)


def _drop_failed(key: HistoryKey, task: asyncio.Task[History]) -> None:
    """A failed read is not kept: the next preview reads again (Scenario may be back)."""
    if not task.cancelled() and task.exception() is None:
        return
    if (read := _histories.get(key)) is not None and read.task is task:
        del _histories[key]


SOMETHING_WRONG = "Something went wrong on our side and nothing was saved. Please try again."


def register(app: AsyncApp, deps: Deps) -> None:
    # Every field the replay depends on; the channel is not one.
    @app.action({"block_id": BLOCK_SCOPE_KIND, "action_id": "kind"})
    @app.action({"block_id": BLOCK_SCOPE_NAME, "action_id": "name"})
    @app.action({"block_id": BLOCK_PERIOD, "action_id": "period"})
    @app.action({"block_id": BLOCK_LIMIT, "action_id": "limit"})
    @app.action({"block_id": BLOCK_THRESHOLDS, "action_id": "thresholds"})
    @app.action({"block_id": BLOCK_FORECAST, "action_id": "forecast"})
    async def on_preview(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        await preview_changed(body, client, deps)

    @app.view(CALLBACK_ID)
    async def on_submit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        acked = False

        async def tracked(*args: Any, **kwargs: Any) -> Any:
            nonlocal acked
            acked = True
            return await ack(*args, **kwargs)

        try:
            await submit_budget_modal(tracked, body, client, deps)  # type: ignore[arg-type]
        except Exception:
            # Never leave Slack without an answer: say so next to the form, nothing saved.
            log.exception("budget form submission failed")
            if not acked:
                await ack(response_action="errors", errors={FIRST_BLOCK: SOMETHING_WRONG})
