"""`/budget test <id>` (SPEC §4): the alert a budget would post now, with today's real
figures and culprits, marked as a test. It reads Scenario as a check does — the same
periods, reads, measure and attribution — and writes nothing: no alert state, no outbox."""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.budgets.culprits import attribute
from bot.budgets.spend import window_for
from bot.jobs.announce import period_label
from bot.jobs.check import load_names, measure
from bot.messages.alerts import AlertView, test_alert_message
from bot.messages.mrkdwn import Json
from bot.reports.reads import periods_for, read_activity, read_windows
from bot.scenario.client import ScenarioClient
from bot.scenario.links import team_url
from bot.store.budgets import Budget


class SampleUnavailable(Exception):
    """The budget's period cannot be read (e.g. a billing budget's plan period)."""


async def sample_alert(
    client: ScenarioClient, budget: Budget, tz: str, app_url: str, now: datetime
) -> Json:
    """The test message; ScenarioError when Scenario cannot be read."""
    periods, unreadable = await periods_for(client, [budget], tz, now)
    if budget.id not in periods:
        raise SampleUnavailable(unreadable.message if unreadable else "its period is unknown")
    period = periods[budget.id]
    responses = await read_windows(client, [budget], periods, now)
    spend, projection = measure(budget, period, responses, now)
    if not budget.forecast:
        projection = None  # what its alerts would show
    window = window_for(budget.scope, period, now)
    async with asyncio.TaskGroup() as reads:
        activity = reads.create_task(read_activity(client, [budget], periods, now))
        names = reads.create_task(load_names(client))
    attribution = attribute(
        budget.scope,
        responses[window],
        activity.result().get(window),
        app_url,
        directory=names.result(),
    )
    used = spend / budget.limit_cu * 100 if budget.limit_cu else 0.0
    reached = [t for t in budget.thresholds if used >= t]
    calendar = not budget.period.is_rolling
    view = AlertView(
        alert_id=0,
        budget_id=budget.id,
        budget_label=f"Budget {budget.label}",
        period_label=period_label(budget.period, period.start if calendar else None, tz),
        tz=tz,
        top_level=max(reached) if reached else None,
        forecast_announced=projection is not None and projection.projected_cu > budget.limit_cu,
        spend_cu=spend,
        limit_cu=budget.limit_cu,
        time_left=period.end - now if calendar and period.end > now else None,
        forecast=projection,
        period_end=period.end if calendar else None,
        attribution=attribution,
        open_url=team_url(app_url),
    )
    return test_alert_message(view, budget.thresholds)
