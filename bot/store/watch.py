"""The watch (SPEC §5b): its setting, the spend history it learns from, "Expected" marks,
and its episodes.

A workspace's watch is stored as a budget row with `watch` set (its sensitivity), so that
its episodes are alerts of that budget: one message each, edits and thread replies through
`bot.jobs.announce`, the outbox's exactly-once delivery and expiry, Snooze 24 h — the
machinery budgets use, not a second one. `list_budgets` and every `/budget` command that
takes a budget number leave the watch row out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.budgets.culprits import Attribution
from bot.budgets.evaluate import EventKind
from bot.budgets.types import PeriodKind
from bot.budgets.watch import Sensitivity
from bot.budgets.watch_history import KEPT, judged_window
from bot.store.alerts import Alert, EpisodeFinding, add_event
from bot.store.audit import record_change
from bot.store.budgets import Budget, budget_from_row
from bot.store.db import from_text, immediate, to_text
from bot.store.outbox import OutboxStatus, drop_for_budget, get_item
from bot.store.workspaces import ensure_workspace

EXPECTED_FOR = timedelta(days=7)
# The latest hours of the history are kept as quarter hours for the detector (whole hours
# before): enough to tell when a burst began.
DETAILED = timedelta(hours=3)
# An episode ends once its cause has looked usual for this long: one quiet check between
# two bursts of the same runaway is not its end.
ENDS_AFTER = timedelta(minutes=30)
# An episode's first message, shown hours late, would describe a spend that has moved on.
EPISODE_TTL = timedelta(hours=2)
END_TTL = timedelta(hours=1)
PERIOD_PREFIX = "watch:"


# -- the setting ----------------------------------------------------------------------------


def get_watch(db: Database, workspace_id: str) -> Budget | None:
    rows = list(
        db.query(
            "SELECT * FROM budgets WHERE workspace_id = ? AND watch IS NOT NULL", [workspace_id]
        )
    )
    return budget_from_row(rows[0]) if rows else None


def _audit(watch: Budget | None) -> dict[str, Any] | None:
    if watch is None:
        return None
    return {"channel_id": watch.channel_id, "sensitivity": watch.watch}


def set_watch(
    db: Database,
    workspace_id: str,
    channel_id: str,
    sensitivity: Sensitivity,
    *,
    actor: str,
    now: datetime,
) -> tuple[Budget | None, Budget]:
    """Turn the watch on, or move it / change its sensitivity. Returns (before, after)."""
    with immediate(db):
        ensure_workspace(db, workspace_id, now=now)
        before = get_watch(db, workspace_id)
        if before is None:
            db.execute(
                "INSERT INTO budgets (workspace_id, scope_kind, period, limit_cu, thresholds,"
                " channel_id, created_by, created_at, updated_at, watch)"
                " VALUES (?, 'team', ?, 1, '[]', ?, ?, ?, ?, ?)",
                [
                    workspace_id,
                    PeriodKind.ROLLING_24H.value,
                    channel_id,
                    actor,
                    to_text(now),
                    to_text(now),
                    sensitivity.value,
                ],
            )
        else:
            db.execute(
                "UPDATE budgets SET channel_id = ?, watch = ?, updated_at = ? WHERE id = ?",
                [channel_id, sensitivity.value, to_text(now), before.id],
            )
        after = get_watch(db, workspace_id)
        assert after is not None
        if _audit(before) != _audit(after):
            record_change(
                db,
                workspace_id=workspace_id,
                actor=actor,
                action="watch.on" if before is None else "watch.edit",
                target="watch",
                before=_audit(before),
                after=_audit(after),
                now=now,
            )
    return before, after


def turn_off(db: Database, workspace_id: str, *, actor: str, now: datetime) -> Budget | None:
    """The watch and what it learnt go (turned on again, it learns afresh); its messages not
    yet sent are dropped. None (nothing changes) when it was off."""
    with immediate(db):
        before = get_watch(db, workspace_id)
        if before is None:
            return None
        db.execute("DELETE FROM budgets WHERE id = ?", [before.id])
        drop_for_budget(db, before.id, now=now)
        db.execute("DELETE FROM watch_spend WHERE workspace_id = ?", [workspace_id])
        db.execute("DELETE FROM watch_progress WHERE workspace_id = ?", [workspace_id])
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="watch.off",
            target="watch",
            before=_audit(before),
            after=None,
            now=now,
        )
    return before


# -- the history ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    backfilled_at: datetime | None
    filled_until: datetime | None  # the end of the latest bucket the check cycle replaced


def progress(db: Database, workspace_id: str) -> Progress:
    rows = list(db.query("SELECT * FROM watch_progress WHERE workspace_id = ?", [workspace_id]))
    if not rows:
        return Progress(None, None)
    row = rows[0]
    return Progress(
        from_text(row["backfilled_at"]) if row["backfilled_at"] else None,
        from_text(row["filled_until"]) if row["filled_until"] else None,
    )


def _progress_row(db: Database, workspace_id: str) -> None:
    db.execute(
        "INSERT INTO watch_progress (workspace_id) VALUES (?) ON CONFLICT DO NOTHING",
        [workspace_id],
    )


def _set_progress(db: Database, workspace_id: str, **fields: datetime) -> None:
    _progress_row(db, workspace_id)
    for name, value in fields.items():
        db.execute(
            f"UPDATE watch_progress SET {name} = ? WHERE workspace_id = ?",
            [to_text(value), workspace_id],
        )


def _identity(team_id: str | None, key_fingerprint: str) -> str:
    return f"{team_id or ''}|{key_fingerprint}"


def is_other_team(db: Database, workspace_id: str, team_id: str | None, key: str) -> bool:
    """Whether the history was learnt from another Scenario team than these credentials'.
    Team IDs decide when both are known; otherwise the API key does (a key rotated without
    a team ID looks like another team: the history is read again, never mixed)."""
    rows = list(
        db.query("SELECT scenario_team FROM watch_progress WHERE workspace_id = ?", [workspace_id])
    )
    known = rows[0]["scenario_team"] if rows else None
    if not known:
        return False
    known_team, _, known_key = known.partition("|")
    if known_team and team_id:
        return known_team != team_id
    return known_key != key


def follow_team(
    db: Database, workspace_id: str, team_id: str | None, key: str, *, now: datetime
) -> bool:
    """The history is of one Scenario team: connected to another one, what was learnt is
    forgotten (and read again), and its open episodes end quietly — the other team's keys
    will not be seen again, so "back to usual" would be a false message. True when it was."""
    identity = _identity(team_id, key)
    rows = list(
        db.query("SELECT scenario_team FROM watch_progress WHERE workspace_id = ?", [workspace_id])
    )
    if rows and rows[0]["scenario_team"] == identity:
        return False  # the common case: no write, no lock
    with immediate(db):
        other = is_other_team(db, workspace_id, team_id, key)
        if other:
            db.execute("DELETE FROM watch_spend WHERE workspace_id = ?", [workspace_id])
            db.execute("DELETE FROM watch_progress WHERE workspace_id = ?", [workspace_id])
            db.execute(
                "UPDATE alerts SET closed_at = ? WHERE closed_at IS NULL AND budget_id IN"
                " (SELECT id FROM budgets WHERE workspace_id = ? AND watch IS NOT NULL)",
                [to_text(now), workspace_id],
            )
        _progress_row(db, workspace_id)
        db.execute(
            "UPDATE watch_progress SET scenario_team = ? WHERE workspace_id = ?",
            [identity, workspace_id],
        )
    return other


def replace_buckets(
    db: Database,
    workspace_id: str,
    buckets: Mapping[datetime, Mapping[str, float]],
    *,
    filled_until: datetime,
) -> None:
    """What the check cycle read: each bucket's rows replace what was stored for it (a bucket
    read again after late data changed it is corrected, never added twice)."""
    for bucket in buckets:
        db.execute(
            "DELETE FROM watch_spend WHERE workspace_id = ? AND bucket = ?",
            [workspace_id, to_text(bucket)],
        )
    _insert(db, workspace_id, buckets)
    current = progress(db, workspace_id).filled_until
    if current is None or filled_until > current:
        _set_progress(db, workspace_id, filled_until=filled_until)


def add_backfill(
    db: Database,
    workspace_id: str,
    buckets: Mapping[datetime, Mapping[str, float]],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """What a back-fill of [start, end) read replaces what was stored there — a quarter the
    last check read only in part included — and the history counts as filled up to `end`.
    Buckets outside the range (a coarse point's share) are left out."""
    with immediate(db):
        if get_watch(db, workspace_id) is None:
            return  # turned off meanwhile: learn nothing
        db.execute(
            "DELETE FROM watch_spend WHERE workspace_id = ? AND bucket >= ? AND bucket < ?",
            [workspace_id, to_text(start), to_text(end)],
        )
        _insert(db, workspace_id, {b: e for b, e in buckets.items() if start <= b < end})
        _set_progress(db, workspace_id, backfilled_at=now)
        current = progress(db, workspace_id).filled_until
        if current is None or end > current:
            _set_progress(db, workspace_id, filled_until=end)


def _insert(
    db: Database, workspace_id: str, buckets: Mapping[datetime, Mapping[str, float]]
) -> None:
    db.conn.executemany(
        "INSERT INTO watch_spend (workspace_id, bucket, entity, cu) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO UPDATE SET cu = cu + excluded.cu",
        [
            (workspace_id, to_text(bucket), entity, cu)
            for bucket, entities in buckets.items()
            for entity, cu in entities.items()
            if cu > 0
        ],
    )


def history_rows(
    db: Database, workspace_id: str, now: datetime, *, without: Iterable[datetime] = ()
) -> list[tuple[datetime, str, float]]:
    """The window the detector judges at `now` (`judged_window`): whole hours added up by
    SQLite (a month of quarter hours per entity is too many rows to carry one by one), the
    last DETAILED hours as quarters (the last half hour's spend, and when a burst began, are
    read from them). Buckets in `without` are left out."""
    start, _, end = judged_window(now)
    detailed = end - DETAILED
    skip = [to_text(b) for b in without]
    not_in = f" AND bucket NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
    hours = db.execute(
        "SELECT CAST(ROUND((julianday(bucket) - julianday(?)) * 96) AS INTEGER) / 4 AS hour,"
        " entity, SUM(cu) FROM watch_spend WHERE workspace_id = ? AND bucket >= ?"
        f" AND bucket < ?{not_in} GROUP BY hour, entity",
        [to_text(start), workspace_id, to_text(start), to_text(detailed), *skip],
    ).fetchall()
    quarters = db.execute(
        "SELECT bucket, entity, cu FROM watch_spend WHERE workspace_id = ? AND bucket >= ?"
        f" AND bucket < ?{not_in}",
        [workspace_id, to_text(detailed), to_text(end), *skip],
    ).fetchall()
    return [(start + hour * timedelta(hours=1), entity, cu) for hour, entity, cu in hours] + [
        (from_text(bucket), entity, cu) for bucket, entity, cu in quarters
    ]


def known_keys(db: Database, workspace_id: str) -> frozenset[str]:
    """The members the history has as API keys."""
    rows = db.execute(
        "SELECT DISTINCT entity FROM watch_spend WHERE workspace_id = ? AND entity >= 'key:'"
        " AND entity < 'key;'",
        [workspace_id],
    ).fetchall()
    return frozenset(entity.removeprefix("key:") for (entity,) in rows)


def prune(db: Database, workspace_id: str, now: datetime) -> None:
    db.execute(
        "DELETE FROM watch_spend WHERE workspace_id = ? AND bucket < ?",
        [workspace_id, to_text(now - KEPT - timedelta(hours=2))],
    )


def pending(db: Database, workspace_id: str) -> dict[str, datetime]:
    """Findings seen by the latest check, not yet confirmed by a second one."""
    rows = list(
        db.query("SELECT pending FROM watch_progress WHERE workspace_id = ?", [workspace_id])
    )
    if not rows:
        return {}
    return {key: from_text(at) for key, at in json.loads(rows[0]["pending"] or "{}").items()}


def set_pending(db: Database, workspace_id: str, found: Mapping[str, datetime]) -> None:
    _progress_row(db, workspace_id)
    db.execute(
        "UPDATE watch_progress SET pending = ? WHERE workspace_id = ?",
        [json.dumps({key: to_text(at) for key, at in found.items()}), workspace_id],
    )


# -- Expected -------------------------------------------------------------------------------


def expected(db: Database, watch_id: int, now: datetime) -> set[tuple[str, str]]:
    """(entity, rule) pairs that may not alert now."""
    rows = db.query(
        "SELECT entity, rule FROM watch_expected WHERE budget_id = ? AND until > ?",
        [watch_id, to_text(now)],
    )
    return {(row["entity"], row["rule"]) for row in rows}


def mark_expected(
    db: Database, workspace_id: str, alert: Alert, *, actor: str, now: datetime
) -> datetime | None:
    """No alert for this episode's entity and rule for 7 days; its episode ends quietly.
    Audited, and told on the episode's message. None when it already was."""
    finding = alert.finding
    if finding is None:
        return None
    until = now + EXPECTED_FOR
    with immediate(db):
        rows = list(
            db.query(
                "SELECT until FROM watch_expected WHERE budget_id = ? AND entity = ? AND rule = ?",
                [alert.budget_id, finding.entity, finding.rule],
            )
        )
        if rows and from_text(rows[0]["until"]) > now:
            return None
        db.execute(
            "INSERT INTO watch_expected (budget_id, entity, rule, until, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET until = excluded.until,"
            " created_by = excluded.created_by, created_at = excluded.created_at",
            [alert.budget_id, finding.entity, finding.rule, to_text(until), actor, to_text(now)],
        )
        if alert.closed_at is None:  # it ends quietly: marked, not back to usual
            db.execute("UPDATE alerts SET closed_at = ? WHERE id = ?", [to_text(now), alert.id])
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="watch.expected",
            target=f"alert:{alert.id}",
            before=None,
            after={"entity": finding.entity, "rule": finding.rule, "until": until},
            now=now,
        )
        add_event(
            db,
            alert.id,
            EventKind.EXPECTED,
            now=now,
            expires_at=now + END_TTL,
            actor=actor,
            detail={"until": to_text(until)},
        )
    return until


def episodes_since(db: Database, watch_id: int, rule: str, since: datetime) -> set[tuple[str, str]]:
    """(entity, rule) of the watch's episodes of `rule` opened since `since`."""
    rows = db.query(
        "SELECT finding FROM alerts WHERE budget_id = ? AND opened_at >= ?",
        [watch_id, to_text(since)],
    )
    found = (EpisodeFinding.from_json(row["finding"]) for row in rows)
    return {(f.entity, f.rule) for f in found if f is not None and f.rule == rule}


def expected_mark(db: Database, alert: Alert) -> tuple[str, datetime, datetime] | None:
    """Who marked this episode's entity and rule as expected during it (or after), until
    when, and when they did."""
    finding = alert.finding
    if finding is None:
        return None
    rows = list(
        db.query(
            "SELECT created_by, until, created_at FROM watch_expected WHERE budget_id = ?"
            " AND entity = ?"
            " AND rule = ? AND created_at >= ?",
            [alert.budget_id, finding.entity, finding.rule, to_text(alert.opened_at)],
        )
    )
    if not rows:
        return None
    row = rows[0]
    return row["created_by"], from_text(row["until"]), from_text(row["created_at"])


def record_revoked(
    db: Database,
    workspace_id: str,
    alert: Alert,
    *,
    key: str,
    project: str,
    actor: str,
    now: datetime,
) -> None:
    """The episode's key was revoked from Slack: audited and told on its message."""
    finding = alert.finding
    assert finding is not None
    with immediate(db):
        updated = replace(finding, revoked=(actor, now))
        db.execute("UPDATE alerts SET finding = ? WHERE id = ?", [updated.as_json(), alert.id])
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="watch.revoke_key",
            target=f"alert:{alert.id}",
            before=None,
            after={"key": key, "project": project, "member": finding.entity},
            now=now,
        )
        add_event(
            db,
            alert.id,
            EventKind.KEY_REVOKED,
            now=now,
            expires_at=now + END_TTL,
            actor=actor,
            detail={"key": key, "project": project},
        )


# -- episodes -------------------------------------------------------------------------------


def open_episode(
    db: Database,
    watch: Budget,
    finding: EpisodeFinding,
    *,
    spend_cu: float,
    attribution: Attribution | None,
    now: datetime,
) -> int:
    """A new episode: an alert of the watch, whose first event posts its message."""
    key = f"{PERIOD_PREFIX}{finding.rule}:{finding.entity}#{to_text(now)}"
    cursor = db.execute(
        "INSERT INTO alerts (budget_id, period_key, channel_id, root_key, opened_at, spend_cu,"
        " limit_cu, attribution, finding, updated_at) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?)",
        [
            watch.id,
            key,
            watch.channel_id,
            to_text(now),
            spend_cu,
            finding.usual_cu,
            json.dumps(asdict(attribution)) if attribution else None,
            finding.as_json(),
            to_text(now),
        ],
    )
    alert_id = int(cursor.lastrowid or 0)
    db.execute("UPDATE alerts SET root_key = ? WHERE id = ?", [f"alert:{alert_id}", alert_id])
    add_event(
        db,
        alert_id,
        EventKind.ANOMALY,
        now=now,
        expires_at=now + EPISODE_TTL,
        spend_cu=spend_cu,
        limit_cu=finding.usual_cu,
    )
    return alert_id


def saw_again(
    db: Database, alert: Alert, spend_cu: float, *, now: datetime, covers: Iterable[str] = ()
) -> None:
    """Still unusual: remembered quietly (the message said what matters already), with what
    it explains now too."""
    stored = alert.finding
    assert stored is not None
    updated = replace(
        stored,
        peak_cu=max(stored.peak_cu, spend_cu),
        last_seen=now,
        covers=tuple(dict.fromkeys([*stored.covers, *covers])),
    )
    db.execute(
        "UPDATE alerts SET finding = ?, spend_cu = ?, updated_at = ? WHERE id = ?",
        [updated.as_json(), spend_cu, to_text(now), alert.id],
    )


def tell_again_if_unseen(db: Database, alert: Alert, watch: Budget, *, now: datetime) -> None:
    """An episode still going on whose message never reached Slack (refused, or expired
    while Slack was down), or whose watch now alerts in another channel, is told again:
    its story goes on in a new message with everything so far (`bot.jobs.announce`)."""
    root = get_item(db, alert.root_key)
    lost = root is not None and root.status in (OutboxStatus.FAILED, OutboxStatus.DROPPED)
    if lost or alert.channel_id != watch.channel_id:
        add_event(
            db,
            alert.id,
            EventKind.ANOMALY,
            now=now,
            expires_at=now + EPISODE_TTL,
            spend_cu=alert.spend_cu,
            limit_cu=alert.limit_cu,
        )


def end_episode(db: Database, alert: Alert, *, now: datetime) -> None:
    db.execute(
        "UPDATE alerts SET closed_at = ?, updated_at = ? WHERE id = ?",
        [to_text(now), to_text(now), alert.id],
    )
    add_event(db, alert.id, EventKind.ANOMALY_ENDED, now=now, expires_at=now + END_TTL)
