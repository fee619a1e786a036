"""The installation and OAuth state stores of multi-workspace mode, on a real database file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_bolt.error import BoltError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlite_utils import Database

from bot.crypto import Sealer, new_key
from bot.store import audit, outbox
from bot.store.installations import InstallationStore, OAuthStateStore
from bot.store.workspaces import (
    ScenarioConnection,
    connect_scenario,
    disconnect_scenario,
    scenario_connection,
)

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
TOKEN = "xoxb-a-workspace-token"


@pytest.fixture
def path(db: Database, tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sealer() -> Sealer:
    return Sealer.from_setting(new_key())


def installation(team: str = "T1", token: str = TOKEN, **extra: object) -> Installation:
    return Installation(
        app_id="A1",
        team_id=team,
        team_name="Acme",
        bot_token=token,
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes="commands,chat:write",
        user_id="U_INSTALLER",
        installed_at=NOW.timestamp(),
        **extra,  # type: ignore[arg-type]
    )


def queue(db: Database, key: str) -> None:
    """A message of T1 waiting in the outbox."""
    outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id="T1",
        channel_id="C1",
        action=outbox.OutboxAction.POST,
        payload={"text": "queued"},
        now=NOW,
    )


async def test_an_installation_round_trips_with_its_token_sealed(
    db: Database, path: Path, sealer: Sealer
) -> None:
    store = InstallationStore(path, sealer, clock=lambda: NOW)
    await store.async_save(installation(bot_refresh_token="xoxe-refresh", bot_token_expires_in=60))
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert (bot.bot_token, bot.bot_refresh_token, bot.bot_user_id) == (
        TOKEN,
        "xoxe-refresh",
        "UBOT",
    )
    assert bot.bot_scopes == ["commands", "chat:write"]
    assert bot.bot_token_expires_at is not None
    row = next(db.query("SELECT * FROM slack_installations"))
    assert TOKEN not in row["bot_token"] and sealer.open(row["bot_token"]) == TOKEN
    assert row["installer_user_id"] == "U_INSTALLER"
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None
    assert await store.installed_team_ids() == {"T1"}


async def test_a_reinstall_or_a_rotation_replaces_the_token(path: Path, sealer: Sealer) -> None:
    store = InstallationStore(path, sealer, clock=lambda: NOW)
    await store.async_save(installation())
    rotated = Bot(
        team_id="T1",
        bot_token="xoxb-rotated",
        bot_id="B1",
        bot_user_id="UBOT",
        installed_at=NOW.timestamp(),
    )
    await store.async_save_bot(rotated)
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-rotated"
    assert bot.team_name == "Acme"  # what the rotation did not say is kept


async def test_an_installation_without_a_workspace_is_refused(path: Path, sealer: Sealer) -> None:
    store = InstallationStore(path, sealer)
    with pytest.raises(BoltError):  # Bolt then shows its "couldn't be saved" page
        await store.async_save(installation(team=""))


async def test_a_token_sealed_with_another_key_is_not_opened(path: Path, sealer: Sealer) -> None:
    from bot.crypto import UnsealError

    await InstallationStore(path, sealer).async_save(installation())
    stranger = InstallationStore(path, Sealer.from_setting(new_key()))
    with pytest.raises(UnsealError):
        await stranger.async_find_bot(enterprise_id=None, team_id="T1")


async def test_the_store_never_blocks_the_event_loop(
    db: Database, path: Path, sealer: Sealer
) -> None:
    """While another connection holds the write lock, a save waits for it in a worker
    thread; the event loop goes on running other tasks meanwhile."""
    store = InstallationStore(path, sealer)
    db.conn.execute("BEGIN IMMEDIATE")
    saving = asyncio.create_task(store.async_save(installation()))
    ticks = 0
    for _ in range(20):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20 and not saving.done()
    db.conn.execute("COMMIT")
    await asyncio.wait_for(saving, 10)
    assert await store.installed_team_ids() == {"T1"}


async def test_forgetting_a_workspace_keeps_only_its_audit_trail(
    db: Database, path: Path, sealer: Sealer
) -> None:
    store = InstallationStore(path, sealer, clock=lambda: NOW)
    await store.async_save(installation())
    await store.async_save(installation(team="T2", token="xoxb-other"))
    connection = ScenarioConnection("key", "a-scenario-secret", "team_1")
    connect_scenario(db, "T1", connection, sealer, actor="U1", now=NOW)
    queue(db, "digest:1")
    await store.forget_workspace("T1", actor="slack", reason="app uninstalled")
    assert await store.installed_team_ids() == {"T2"}
    assert scenario_connection(db, "T1", sealer) is None
    assert outbox.get_item(db, "digest:1").status is outbox.OutboxStatus.DROPPED
    [entry, connected] = audit.history(db, "T1")
    assert (entry.action, entry.actor, connected.action) == ("uninstall", "slack", "connect")
    assert entry.after["unsent_dropped"] == 1


def test_a_connection_round_trips_sealed_and_disconnects_once(db: Database, sealer: Sealer) -> None:
    connection = ScenarioConnection("a-key", "a-scenario-secret", None)
    connect_scenario(db, "T1", connection, sealer, actor="U1", now=NOW)
    assert scenario_connection(db, "T1", sealer) == connection
    stored = next(db.query("SELECT * FROM workspaces WHERE team_id = 'T1'"))
    assert "a-scenario-secret" not in str(stored) and "a-key" not in str(stored)
    assert "a-scenario-secret" not in repr(connection)
    assert disconnect_scenario(db, "T1", actor="U1", now=NOW) is True
    assert disconnect_scenario(db, "T1", actor="U1", now=NOW) is False
    assert [e.action for e in audit.history(db, "T1")] == ["disconnect", "connect"]


# -- OAuth states ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_state_is_good_once(path: Path) -> None:
    store = OAuthStateStore(path, b"secret", clock=Clock())
    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False


async def test_two_requests_racing_with_one_state_let_one_through(path: Path) -> None:
    store = OAuthStateStore(path, b"secret", clock=Clock())
    state = await store.async_issue()
    results = await asyncio.gather(*(store.async_consume(state) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_a_state_expires(path: Path) -> None:
    clock = Clock()
    store = OAuthStateStore(path, b"secret", lifetime_seconds=600, clock=clock)
    kept, late = await store.async_issue(), await store.async_issue()
    clock.now += 599
    assert await store.async_consume(kept) is True
    clock.now += 1
    assert await store.async_consume(late) is False


@pytest.mark.parametrize(
    "forge",
    [
        lambda s: s[:-1] + ("0" if s[-1] != "0" else "1"),  # signature changed
        lambda s: ".".join([s.split(".")[0], str(int(s.split(".")[1]) + 60), s.split(".")[2]]),
        lambda s: s.split(".")[0],  # the nonce alone
        lambda s: "",
        lambda s: "é.1.x",
    ],
)
async def test_a_forged_state_is_refused(path: Path, forge: object) -> None:
    store = OAuthStateStore(path, b"secret", clock=Clock())
    state = await store.async_issue()
    assert await store.async_consume(forge(state)) is False  # type: ignore[operator]
    assert await store.async_consume(state) is True  # the real one is still good


async def test_a_state_signed_with_another_secret_is_refused(path: Path) -> None:
    state = await OAuthStateStore(path, b"one", clock=Clock()).async_issue()
    assert await OAuthStateStore(path, b"two", clock=Clock()).async_consume(state) is False


async def test_after_a_key_rotation_every_secret_moves_onto_the_new_key(
    db: Database, path: Path
) -> None:
    from bot.store.installations import reseal_all

    old_key, new = new_key(), new_key()
    old = Sealer.from_setting(old_key)
    await InstallationStore(path, old).async_save(installation())
    connect_scenario(db, "T1", ScenarioConnection("k", "s", None), old, actor="U1", now=NOW)
    rotated = Sealer.from_setting(f"{new},{old_key}")  # the new key first, the old one kept
    assert reseal_all(db, rotated) == (3, 0)  # the token, the key, the secret
    assert reseal_all(db, rotated) == (0, 0)  # already on the new key: left alone
    only_new = Sealer.from_setting(new)  # the old key can go now
    bot = await InstallationStore(path, only_new).async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == TOKEN
    assert scenario_connection(db, "T1", only_new) == ScenarioConnection("k", "s", None)
    # A value no configured key opens is left as it is, and counted.
    assert reseal_all(db, Sealer.from_setting(new_key())) == (0, 3)


def test_a_message_dropped_while_it_was_being_sent_stays_dropped(db: Database) -> None:
    queue(db, "alert:1")
    item = outbox.get_item(db, "alert:1")
    outbox.drop_for_workspace(db, "T1", reason="app uninstalled", now=NOW)
    outbox.mark_failed(db, item.id, error="token_revoked")  # the post in flight failed
    assert outbox.get_item(db, "alert:1").status is outbox.OutboxStatus.DROPPED
    assert (
        outbox.requeue_failed(
            db, workspace_id="T1", channel_id="C1", keep_failed=frozenset(), now=NOW
        )
        == 0
    )
