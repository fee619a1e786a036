"""Alerts (one per budget and period, owning its Slack message), their events, the history
of levels fired (`alert_state`) and acknowledgements (snoozes: `store/snoozes.py`).

Every change to an alert writes its events in the same transaction; `bot.jobs.announce`
later turns each unpublished event into outbox rows (the post, or an edit plus one thread
reply), also in one transaction — so a crash between the two loses nothing and repeats
nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.budgets.culprits import Attribution, Culprit, JobCulprit
from bot.budgets.evaluate import (
    FORECAST_LEVEL,
    AlertChange,
    AlertKind,
    AlertState,
    BudgetRule,
    EventKind,
    rearm,
)
from bot.budgets.forecast import Forecast
from bot.budgets.periods import Period, calendar_period_of_key
from bot.store.audit import record_change
from bot.store.db import from_text, immediate, to_text

# How long an alert message about a rolling window still matters if Slack cannot take it.
ROLLING_TTL = timedelta(hours=24)
# A reply about someone's button press or edit, shown late, would confuse more than help.
ACTION_TTL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    budget_id: int
    period_key: str
    period_start: datetime | None  # None for rolling windows
    period_end: datetime | None
    state: AlertState
    spend_cu: float  # what the latest check saw
    limit_cu: float
    projection: Forecast | None
    attribution: Attribution
    channel_id: str
    root_key: str  # the outbox key of the message's top-level post
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    finding: EpisodeFinding | None = None  # a watch episode's; None for a budget's alert

    def is_current(self, now: datetime) -> bool:
        """Its period is still running and (rolling) the episode is open. An alert carried
        over from before the upgrade learns its period's end from the next check; until
        then it is not taken for the current one."""
        if self.closed_at is not None:
            return False
        if self.period_end is None:
            return self.period_key.startswith(("rolling:", "watch:"))
        return now < self.period_end


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: int
    alert_id: int
    kind: EventKind
    level: int | None
    spend_cu: float | None
    limit_cu: float | None
    actor: str | None
    detail: dict[str, Any]
    at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class EpisodeFinding:
    """What a watch episode is about (`bot.store.watch`), as its message shows it."""

    entity: str  # a scope: `key:<member id>`, `user:…`, `model:…`
    rule: str
    usual_cu: float
    peak_cu: float  # the largest hour (new entity: its total) seen during the episode
    since: datetime
    last_seen: datetime
    name: str = ""  # how messages name the entity (from Scenario: escaped where shown)
    explains: tuple[str, ...] = ()  # names of the broader entities it lifted (its model…)
    projects: tuple[str, ...] = ()  # names of the projects its cause spent on, most first
    revoked: tuple[str, datetime] | None = None  # the key's revocation from Slack: who, when
    covers: tuple[str, ...] = ()  # the scopes it explains (`explains` are their names)

    def as_json(self) -> str:
        data = asdict(self)
        data["since"], data["last_seen"] = to_text(self.since), to_text(self.last_seen)
        if self.revoked is not None:
            data["revoked"] = [self.revoked[0], to_text(self.revoked[1])]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> EpisodeFinding | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(
            entity=data["entity"],
            rule=data["rule"],
            usual_cu=data["usual_cu"],
            peak_cu=data["peak_cu"],
            since=from_text(data["since"]),
            last_seen=from_text(data["last_seen"]),
            name=data.get("name", ""),
            explains=tuple(data.get("explains", ())),
            projects=tuple(data.get("projects", ())),
            revoked=(data["revoked"][0], from_text(data["revoked"][1]))
            if data.get("revoked")
            else None,
            covers=tuple(data.get("covers", ())),
        )


# -- alerts -------------------------------------------------------------------------------


def current_alert(db: Database, budget_id: int, period: Period) -> tuple[Alert | None, int]:
    """This period's alert (rolling: the window's latest episode) and how many episodes
    the window had."""
    if not period.kind.is_rolling:
        rows = list(
            db.query(
                "SELECT * FROM alerts WHERE budget_id = ? AND period_key = ?",
                [budget_id, period.key],
            )
        )
        return (_alert(rows[0]) if rows else None), 0
    # Episodes are `key#n`: the range ['key#', 'key$') holds exactly those ('$' follows '#').
    rows = list(
        db.query(
            "SELECT * FROM alerts WHERE budget_id = ? AND period_key >= ? AND period_key < ?"
            " ORDER BY id",
            [budget_id, period.key + "#", period.key + "$"],
        )
    )
    return (_alert(rows[-1]) if rows else None), len(rows)


def open_alert_of(db: Database, budget_id: int, now: datetime) -> Alert | None:
    """The budget's alert that is still current (its period running, its episode open)."""
    rows = db.query(
        "SELECT * FROM alerts WHERE budget_id = ? AND closed_at IS NULL ORDER BY id DESC LIMIT 3",
        [budget_id],
    )
    for row in rows:
        alert = _alert(row)
        if alert.is_current(now):
            return alert
    return None


def get_alert(db: Database, workspace_id: str, alert_id: int) -> Alert | None:
    """The alert, only if its budget belongs to this workspace (button values are untrusted).

    A button posted before m002 carries the ID of a line of the history (`alert_state`,
    whose IDs m002 kept); it names the alert of that line's budget and period."""
    rows = list(
        db.query(
            "SELECT a.* FROM alerts a JOIN budgets b ON b.id = a.budget_id"
            " WHERE a.id = ? AND b.workspace_id = ?",
            [alert_id, workspace_id],
        )
    )
    if not rows:
        rows = list(
            db.query(
                "SELECT a.* FROM alert_state s JOIN budgets b ON b.id = s.budget_id"
                " JOIN alerts a ON a.budget_id = s.budget_id AND (a.period_key = s.period_key"
                "  OR (s.period_key LIKE 'rolling:%' AND a.period_key ="
                "      substr(s.period_key, 1, instr(s.period_key, '#')) || 'migrated'))"
                " WHERE s.id = ? AND b.workspace_id = ? AND s.id < ?",
                [alert_id, workspace_id, _first_alert_id(db)],
            )
        )
    return _alert(rows[0]) if rows else None


def _first_alert_id(db: Database) -> int:
    """Alert IDs start above every ID the history had at the upgrade (see m002): lines
    under that are the ones old buttons name."""
    row = db.execute("SELECT MIN(id) FROM alerts").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def open_alerts(db: Database, budget_id: int) -> list[Alert]:
    """Every alert of the budget not closed yet (a watch has one per open episode)."""
    rows = db.query(
        "SELECT * FROM alerts WHERE budget_id = ? AND closed_at IS NULL ORDER BY id", [budget_id]
    )
    return [_alert(row) for row in rows]


def alert_by_id(db: Database, alert_id: int) -> Alert | None:
    rows = list(db.query("SELECT * FROM alerts WHERE id = ?", [alert_id]))
    return _alert(rows[0]) if rows else None


def apply_change(
    db: Database,
    *,
    budget_id: int,
    channel_id: str,
    change: AlertChange,
    period: Period,
    spend_cu: float,
    limit_cu: float,
    projection: Forecast | None,
    attribution: Attribution | None,
    now: datetime,
) -> int:
    """Write one alert's new state and its events (inside the caller's transaction)."""
    state = change.state
    period_end = None if period.kind.is_rolling else period.end
    fields = {
        "passed": json.dumps(sorted(state.passed)),
        "forecast": int(state.forecast),
        "spend_cu": spend_cu,
        "limit_cu": limit_cu,
        "projection": forecast_json(projection),
        "updated_at": to_text(now),
        "closed_at": to_text(now) if state.closed else None,
        "period_end": to_text(period_end) if period_end else None,
        "period_start": None if period.kind.is_rolling else to_text(period.start),
    }
    if change.opens:
        cursor = db.execute(
            "INSERT INTO alerts (budget_id, period_key, channel_id, root_key, opened_at,"
            f" {', '.join(fields)}) VALUES (?, ?, ?, '', ?, {', '.join('?' for _ in fields)})",
            [budget_id, state.period_key, channel_id, to_text(now), *fields.values()],
        )
        alert_id = int(cursor.lastrowid or 0)
        db.execute("UPDATE alerts SET root_key = ? WHERE id = ?", [f"alert:{alert_id}", alert_id])
    else:
        alert_id = next(
            db.query(
                "SELECT id FROM alerts WHERE budget_id = ? AND period_key = ?",
                [budget_id, state.period_key],
            )
        )["id"]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE alerts SET {assignments} WHERE id = ?", [*fields.values(), alert_id])
    if attribution is not None:
        db.execute(
            "UPDATE alerts SET attribution = ? WHERE id = ?",
            [json.dumps(asdict(attribution)), alert_id],
        )
    expires = period_end if period_end is not None else now + ROLLING_TTL
    for event in change.events:
        add_event(
            db,
            alert_id,
            event.kind,
            now=now,
            expires_at=expires,
            level=event.level,
            spend_cu=spend_cu,
            limit_cu=limit_cu,
        )
        for level in event.levels or (event.level,):
            _log_history(
                db, budget_id, state.period_key, event.kind, level, spend_cu, limit_cu, now
            )
    return alert_id


def saw_spend(
    db: Database, alert: Alert, spend_cu: float, period: Period, *, now: datetime
) -> None:
    """What the latest check saw, for re-arming on an edit (only written when it changed),
    and the period's bounds for an alert carried over from before the upgrade."""
    if alert.period_end is None and not period.kind.is_rolling:
        db.execute(
            "UPDATE alerts SET period_start = ?, period_end = ? WHERE id = ?",
            [to_text(period.start), to_text(period.end), alert.id],
        )
    if alert.spend_cu != spend_cu:
        db.execute(
            "UPDATE alerts SET spend_cu = ?, updated_at = ? WHERE id = ?",
            [spend_cu, to_text(now), alert.id],
        )


def rearm_on_edit(
    db: Database,
    *,
    budget_id: int,
    old_limit: float,
    rule: BudgetRule,
    rolling: bool,
    changed: dict[str, Any],
    actor: str,
    now: datetime,
    new_period: bool = False,
) -> None:
    """Inside the edit's transaction: the current alert's levels re-armed, and the edit
    announced on its message. With another period or scope the budget's story starts over:
    the current alert is closed, and the next crossing is a new message."""
    alert = open_alert_of(db, budget_id, now)
    if alert is None:
        return
    if new_period:
        # Its key is freed: the budget's next alert in this period (or with the old period
        # again) is a new one, with a message of its own.
        db.execute(
            "UPDATE alerts SET closed_at = ?, period_key = period_key || '~' || id WHERE id = ?",
            [to_text(now), alert.id],
        )
        return
    if not changed:
        return
    state = rearm(
        alert.state, seen_spend=alert.spend_cu, rule=rule, old_limit=old_limit, rolling=rolling
    )
    db.execute(
        "UPDATE alerts SET passed = ?, forecast = ?, limit_cu = ?, updated_at = ?,"
        " closed_at = ? WHERE id = ?",
        [
            json.dumps(sorted(state.passed)),
            int(state.forecast),
            rule.limit_cu,
            to_text(now),
            to_text(now) if state.closed else None,
            alert.id,
        ],
    )
    add_event(
        db,
        alert.id,
        EventKind.EDITED,
        now=now,
        expires_at=_action_expiry(alert, now),
        actor=actor,
        spend_cu=alert.spend_cu,
        limit_cu=rule.limit_cu,
        detail={
            **changed,
            "thresholds": list(rule.thresholds),
            **({"from_limit_cu": old_limit} if "limit_cu" in changed else {}),
        },
    )


def add_event(
    db: Database,
    alert_id: int,
    kind: EventKind,
    *,
    now: datetime,
    expires_at: datetime,
    level: int | None = None,
    spend_cu: float | None = None,
    limit_cu: float | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    db.execute(
        "INSERT INTO alert_events (alert_id, kind, level, spend_cu, limit_cu, actor, detail,"
        " at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            alert_id,
            kind.value,
            level,
            spend_cu,
            limit_cu,
            actor,
            json.dumps(detail or {}, default=str),
            to_text(now),
            to_text(expires_at),
        ],
    )


def unpublished_events(db: Database, *, workspace_id: str | None = None) -> list[AlertEvent]:
    where, params = "", []
    if workspace_id is not None:
        where = (
            " AND alert_id IN (SELECT a.id FROM alerts a JOIN budgets b ON b.id = a.budget_id"
            " WHERE b.workspace_id = ?)"
        )
        params = [workspace_id]
    rows = db.query(f"SELECT * FROM alert_events WHERE published = 0{where} ORDER BY id", params)
    return [_event(row) for row in rows]


def events_of(db: Database, alert_id: int) -> list[AlertEvent]:
    rows = db.query("SELECT * FROM alert_events WHERE alert_id = ? ORDER BY id", [alert_id])
    return [_event(row) for row in rows]


def last_limit_change(db: Database, alert_id: int) -> AlertEvent | None:
    """The alert's latest edit that changed the limit (its detail holds the old one)."""
    rows = db.query(
        "SELECT * FROM alert_events WHERE alert_id = ? AND kind = ?"
        " AND json_extract(detail, '$.from_limit_cu') IS NOT NULL ORDER BY id DESC LIMIT 1",
        [alert_id, EventKind.EDITED.value],
    )
    return next((_event(row) for row in rows), None)


def mark_published(db: Database, event_id: int) -> None:
    db.execute("UPDATE alert_events SET published = 1 WHERE id = ?", [event_id])


def new_message(db: Database, alert_id: int, channel_id: str, root_key: str) -> str:
    """The alert's story goes on in a new message (the budget alerts in another channel
    now, or its first message never reached Slack): its next event posts it."""
    db.execute(
        "UPDATE alerts SET channel_id = ?, root_key = ? WHERE id = ?",
        [channel_id, root_key, alert_id],
    )
    return root_key


def follow_timezone(db: Database, workspace_id: str, timezone: str, *, now: datetime) -> None:
    """Inside a timezone change's transaction: the current alerts of calendar budgets
    become the same period's in the new zone (`monthly:2026-11@UTC` →
    `monthly:2026-11@Europe/Paris`), so that the next check goes on with their message
    instead of posting a second one for the same budget and month."""
    rows = db.query(
        "SELECT a.* FROM alerts a JOIN budgets b ON b.id = a.budget_id"
        " WHERE b.workspace_id = ? AND a.closed_at IS NULL AND a.period_end > ?",
        [workspace_id, to_text(now)],
    )
    for row in list(rows):
        key = row["period_key"].rsplit("@", 1)[0] + "@" + timezone
        period = calendar_period_of_key(key)
        if period is None or key == row["period_key"]:
            continue
        db.execute(
            "UPDATE OR IGNORE alerts SET period_key = ?, period_start = ?, period_end = ?"
            " WHERE id = ?",
            [key, to_text(period.start), to_text(period.end), row["id"]],
        )


def _action_expiry(alert: Alert, now: datetime) -> datetime:
    expires = now + ACTION_TTL
    return min(expires, alert.period_end) if alert.period_end else expires


# -- the history of levels fired ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One line of the history: a level (or the forecast) fired, maybe back under since."""

    id: int
    budget_id: int
    period_key: str
    kind: AlertKind
    level: int
    spend_cu: float
    limit_cu: float
    fired_at: datetime
    resolved_at: datetime | None


def _log_history(
    db: Database,
    budget_id: int,
    period_key: str,
    kind: EventKind,
    level: int | None,
    spend_cu: float,
    limit_cu: float,
    now: datetime,
) -> None:
    if kind is EventKind.BACK_UNDER:
        # Every level at and above the one fallen under has re-armed — in this window's
        # lines of any episode (those carried over from before m002 have their own keys).
        window = period_key.split("#")[0]
        db.execute(
            "UPDATE alert_state SET resolved_at = ? WHERE budget_id = ?"
            " AND period_key >= ? AND period_key < ?"
            " AND kind = ? AND level >= ? AND resolved_at IS NULL",
            [
                to_text(now),
                budget_id,
                window + "#",
                window + "$",
                AlertKind.THRESHOLD.value,
                level,
            ],
        )
        return
    if kind not in (EventKind.LEVEL, EventKind.FORECAST):
        return
    history_kind = AlertKind.THRESHOLD if kind is EventKind.LEVEL else AlertKind.FORECAST
    # A level may fire again in one period (after a raise, or once re-armed): one line each.
    db.execute(
        "INSERT INTO alert_state (budget_id, period_key, kind, level, spend_cu, limit_cu,"
        " fired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            budget_id,
            period_key,
            history_kind.value,
            level if level is not None else FORECAST_LEVEL,
            spend_cu,
            limit_cu,
            to_text(now),
        ],
    )


def recent_alerts(
    db: Database, workspace_id: str, *, budget_id: int | None = None, limit: int = 10
) -> list[AlertRow]:
    """Newest first, across the workspace or for one budget."""
    where, params = "b.workspace_id = ?", [workspace_id]
    if budget_id is not None:
        where += " AND a.budget_id = ?"
        params.append(budget_id)
    rows = db.query(
        "SELECT a.* FROM alert_state a JOIN budgets b ON b.id = a.budget_id"
        f" WHERE {where} ORDER BY a.fired_at DESC, a.id DESC LIMIT ?",
        [*params, limit],
    )
    return [_history(row) for row in rows]


# -- acknowledgements, and changes told on the open alert ------------------------------


def tell_open_alert(
    db: Database,
    budget_id: int,
    kind: EventKind,
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Someone's change, told on the budget's current message (if it has one)."""
    alert = open_alert_of(db, budget_id, now)
    if alert is not None:
        add_event(
            db,
            alert.id,
            kind,
            now=now,
            expires_at=_action_expiry(alert, now),
            actor=actor,
            detail=detail,
        )


def acknowledge(
    db: Database, workspace_id: str, alert_id: int, *, actor: str, now: datetime
) -> bool:
    """True the first time; pressing Acknowledge again changes nothing."""
    with immediate(db):
        cursor = db.execute(
            "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?"
            " WHERE id = ? AND acknowledged_by IS NULL",
            [actor, to_text(now), alert_id],
        )
        if cursor.rowcount != 1:
            return False
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="alert.acknowledge",
            target=f"alert:{alert_id}",
            before=None,
            after={"acknowledged_by": actor},
            now=now,
        )
        add_event(
            db,
            alert_id,
            EventKind.ACKNOWLEDGED,
            now=now,
            expires_at=now + ACTION_TTL,
            actor=actor,
        )
    return True


# -- rows ---------------------------------------------------------------------------------


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(
        id=row["id"],
        budget_id=row["budget_id"],
        period_key=row["period_key"],
        period_start=from_text(row["period_start"]) if row["period_start"] else None,
        period_end=from_text(row["period_end"]) if row["period_end"] else None,
        state=AlertState(
            row["period_key"],
            frozenset(json.loads(row["passed"])),
            bool(row["forecast"]),
            row["closed_at"] is not None,
        ),
        spend_cu=row["spend_cu"],
        limit_cu=row["limit_cu"],
        projection=forecast_of(row["projection"]),
        attribution=_attribution_of(row["attribution"]),
        channel_id=row["channel_id"],
        root_key=row["root_key"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=from_text(row["acknowledged_at"]) if row["acknowledged_at"] else None,
        opened_at=from_text(row["opened_at"]),
        closed_at=from_text(row["closed_at"]) if row["closed_at"] else None,
        finding=EpisodeFinding.from_json(row.get("finding")),
    )


def _event(row: dict[str, Any]) -> AlertEvent:
    return AlertEvent(
        id=row["id"],
        alert_id=row["alert_id"],
        kind=EventKind(row["kind"]),
        level=row["level"],
        spend_cu=row["spend_cu"],
        limit_cu=row["limit_cu"],
        actor=row["actor"],
        detail=json.loads(row["detail"] or "{}"),
        at=from_text(row["at"]),
        expires_at=from_text(row["expires_at"]),
    )


def _history(row: dict[str, Any]) -> AlertRow:
    return AlertRow(
        id=row["id"],
        budget_id=row["budget_id"],
        period_key=row["period_key"],
        kind=AlertKind(row["kind"]),
        level=row["level"],
        spend_cu=row["spend_cu"],
        limit_cu=row["limit_cu"],
        fired_at=from_text(row["fired_at"]),
        resolved_at=from_text(row["resolved_at"]) if row["resolved_at"] else None,
    )


def forecast_json(projection: Forecast | None) -> str | None:
    if projection is None:
        return None
    data = asdict(projection)
    data["exhaustion_at"] = to_text(projection.exhaustion_at) if projection.exhaustion_at else None
    return json.dumps(data)


def forecast_of(text: str | None) -> Forecast | None:
    if not text:
        return None
    data = json.loads(text)
    at = data.pop("exhaustion_at")
    return Forecast(**data, exhaustion_at=from_text(at) if at else None)


def _attribution_of(text: str | None) -> Attribution:
    if not text:
        return Attribution()
    data = json.loads(text)

    def culprit(item: dict[str, Any] | None) -> Culprit | None:
        return Culprit(**item) if item else None

    return Attribution(
        models=tuple(Culprit(**c) for c in data["models"]),
        users=tuple(Culprit(**c) for c in data["users"]),
        jobs=tuple(
            JobCulprit(
                job_id=j["job_id"],
                cu=j["cu"],
                job_type=j["job_type"],
                model=culprit(j["model"]),
                user=culprit(j["user"]),
                asset_urls=tuple(j["asset_urls"]),
            )
            for j in data["jobs"]
        ),
        partial=data["partial"],
    )
