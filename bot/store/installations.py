"""Multi-workspace mode: Slack installations and OAuth states in our own database (SPEC §3).

Both classes implement slack_sdk's async interfaces for Bolt. Unlike slack_sdk's own SQLite
stores, which call sqlite3 from their async methods and so stall the event loop, every
call here runs in a worker thread on a connection of its own (the shared connection of the
event loop's thread may be inside a transaction at that moment). Tokens are sealed with
BUDGET_BOT_SECRET_KEY: the database file never holds one in clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging import Logger, getLogger
from pathlib import Path
from typing import Any, TypeVar

from slack_bolt.error import BoltError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlite_utils import Database

from bot.crypto import Sealer, UnsealError
from bot.store import outbox
from bot.store.audit import record_change
from bot.store.db import immediate, open_db, to_text
from bot.store.workspaces import ensure_workspace, forget_connection

T = TypeVar("T")
STATE_LIFETIME_SECONDS = 600  # Slack's consent page is answered in minutes, not hours
MAX_LIVE_STATES = 10_000


class _OwnConnection:
    """Runs a function on a fresh connection to the database file, in a worker thread."""

    def __init__(self, path: Path | str) -> None:
        if str(path) == ":memory:":
            raise ValueError("the installation store needs a database file, not :memory:")
        self._path = path

    async def run(self, work: Callable[[Database], T]) -> T:
        return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[Database], T]) -> T:
        db = open_db(self._path)
        try:
            return work(db)
        finally:
            db.close()


class NotInstalled(Exception):
    """Multi-workspace mode: the app is not (or no longer) installed in this workspace."""

    def __init__(self, team_id: str) -> None:
        super().__init__(f"the app is not installed in workspace {team_id}")
        self.team_id = team_id


def utc_now() -> datetime:
    return datetime.now(UTC)


class InstallationStore(AsyncInstallationStore):
    """One bot installation per workspace (the bot needs no user tokens). Bolt is set up
    with ``installation_store_bot_only``, so it reads bots and saves rotated ones here."""

    def __init__(
        self, path: Path | str, sealer: Sealer, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = _OwnConnection(path)
        self._sealer = sealer
        self._clock = clock

    @property
    def logger(self) -> Logger:
        return getLogger(__name__)

    async def async_save(self, installation: Installation) -> None:
        await self._save_in_thread(installation.to_bot(), installer=installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._save_in_thread(bot, installer=None)

    async def _save_in_thread(self, bot: Bot, *, installer: str | None) -> None:
        if not bot.team_id:
            # Org-wide (Enterprise Grid) installs are not offered by the manifest.
            raise BoltError("an installation without a workspace (team) ID")
        try:
            await self._db.run(lambda db: self._save(db, bot, installer))
        except sqlite3.Error as exc:
            # Bolt shows its "couldn't be saved" page for a BoltError only.
            raise BoltError(
                f"the installation could not be stored ({type(exc).__name__})"
            ) from None

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        if not team_id:
            return None
        return await self._db.run(lambda db: self._find(db, team_id))

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        # Bot-only store: Bolt asks for bots (installation_store_bot_only), never for this.
        raise NotImplementedError()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        if team_id:
            await self._db.run(lambda db: db.execute(_DELETE, [team_id]))

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        if user_id is None:  # slack_sdk: no user means the workspace's installation
            await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def installed_team_ids(self) -> set[str]:
        rows = await self._db.run(
            lambda db: list(db.query("SELECT team_id FROM slack_installations"))
        )
        return {row["team_id"] for row in rows}

    async def forget_workspace(self, team_id: str, *, actor: str, reason: str) -> None:
        """The app was uninstalled or its bot token revoked: the workspace's token and
        Scenario secrets go, its unsent messages are dropped (a reinstall must not post
        them late), and the audit trail records it and stays."""
        now = self._clock()

        def forget(db: Database) -> None:
            with immediate(db):
                ensure_workspace(db, team_id, now=now)
                had_token = db.execute(_DELETE, [team_id]).rowcount > 0
                forget_connection(db, team_id)
                dropped = outbox.drop_for_workspace(db, team_id, reason=reason, now=now)
                record_change(
                    db,
                    workspace_id=team_id,
                    actor=actor,
                    action="uninstall",
                    target="workspace",
                    before={"installed": had_token},
                    after={"installed": False, "reason": reason, "unsent_dropped": dropped},
                    now=now,
                )

        await self._db.run(forget)

    # -- in the worker thread

    def _save(self, db: Database, bot: Bot, installer: str | None) -> None:
        now = to_text(self._clock())
        seal = self._sealer.seal
        scopes = ",".join(bot.bot_scopes) if bot.bot_scopes else None
        with immediate(db):
            ensure_workspace(db, bot.team_id, now=self._clock(), name=bot.team_name)
            db.execute(
                "INSERT INTO slack_installations (team_id, enterprise_id, team_name, app_id,"
                " bot_id, bot_user_id, bot_scopes, bot_token, bot_refresh_token,"
                " bot_token_expires_at, installer_user_id, installed_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (team_id) DO UPDATE SET enterprise_id = excluded.enterprise_id,"
                " team_name = COALESCE(excluded.team_name, team_name),"
                " app_id = COALESCE(excluded.app_id, app_id), bot_id = excluded.bot_id,"
                " bot_user_id = excluded.bot_user_id, bot_scopes = excluded.bot_scopes,"
                " bot_token = excluded.bot_token, bot_refresh_token = excluded.bot_refresh_token,"
                " bot_token_expires_at = excluded.bot_token_expires_at,"
                " installer_user_id = COALESCE(excluded.installer_user_id, installer_user_id),"
                " updated_at = excluded.updated_at",
                [
                    bot.team_id,
                    bot.enterprise_id,
                    bot.team_name,
                    bot.app_id,
                    bot.bot_id,
                    bot.bot_user_id,
                    scopes,
                    seal(bot.bot_token),
                    seal(bot.bot_refresh_token) if bot.bot_refresh_token else None,
                    bot.bot_token_expires_at,
                    installer,
                    now,
                    now,
                ],
            )
            # A token that works again: messages held because the old one was unreadable go
            # (due when their failed attempt's lease ends; expired ones are dropped by the
            # next delivery, never sent late).
            db.execute(
                "UPDATE outbox SET status = 'pending' WHERE workspace_id = ?"
                " AND status = 'failed' AND last_error = 'token_unreadable'",
                [bot.team_id],
            )

    def _find(self, db: Database, team_id: str) -> Bot | None:
        rows = list(db.query("SELECT * FROM slack_installations WHERE team_id = ?", [team_id]))
        if not rows:
            return None
        row = rows[0]
        unseal = self._sealer.open
        return Bot(
            app_id=row["app_id"],
            enterprise_id=row["enterprise_id"],
            team_id=row["team_id"],
            team_name=row["team_name"],
            bot_token=unseal(row["bot_token"]),
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_scopes=row["bot_scopes"] or "",
            bot_refresh_token=unseal(row["bot_refresh_token"])
            if row["bot_refresh_token"]
            else None,
            bot_token_expires_at=row["bot_token_expires_at"],
            installed_at=datetime.fromisoformat(row["installed_at"].replace("Z", "+00:00")),
        )


_DELETE = "DELETE FROM slack_installations WHERE team_id = ?"
# Every sealed column: (table, key column, sealed column).
SEALED = (
    ("slack_installations", "team_id", "bot_token"),
    ("slack_installations", "team_id", "bot_refresh_token"),
    ("workspaces", "team_id", "scenario_api_key"),
    ("workspaces", "team_id", "scenario_api_secret"),
)


def reseal_all(db: Database, sealer: Sealer) -> tuple[int, int]:
    """After a key rotation (a new key put first in BUDGET_BOT_SECRET_KEY), move every
    stored secret onto the first key, in one transaction, so that the old key can then be
    removed; values already on it are left alone. Returns how many moved, and how many no
    configured key opens (left as they are: their workspace must reinstall or reconnect)."""
    moved = unreadable = 0
    with immediate(db):
        for table, key, column in SEALED:
            rows = db.execute(
                f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"
            ).fetchall()
            for ident, sealed in rows:
                if sealer.sealed_with_first(sealed):
                    continue
                try:
                    resealed = sealer.reseal(sealed)
                except UnsealError:
                    unreadable += 1
                    continue
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", [resealed, ident])
                moved += 1
    return moved, unreadable


class OAuthStateStore(AsyncOAuthStateStore):
    """Signed, single-use, expiring OAuth states.

    A state is ``nonce.expiry.signature``: the HMAC refuses a forged one before the database
    is asked, the expiry an old one, and deleting the nonce as it is taken a replayed one
    (of two requests racing with one state, only one deletes the row).
    """

    def __init__(
        self,
        path: Path | str,
        secret: bytes,
        *,
        lifetime_seconds: int = STATE_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = _OwnConnection(path)
        self._secret = secret
        self._lifetime = lifetime_seconds
        self._clock = clock

    @property
    def logger(self) -> Logger:
        return getLogger(__name__)

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        nonce = secrets.token_urlsafe(24)
        expires = int(self._clock()) + self._lifetime

        def issue(db: Database) -> None:
            # Old states that were never used go as new ones come; the install page is
            # public, so the live ones are capped too (the oldest go first).
            db.execute("DELETE FROM oauth_states WHERE expires_at <= ?", [int(self._clock())])
            db.execute(
                "DELETE FROM oauth_states WHERE nonce IN (SELECT nonce FROM oauth_states"
                " ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
                [MAX_LIVE_STATES - 1],
            )
            db.execute(
                "INSERT INTO oauth_states (nonce, expires_at) VALUES (?, ?)", [nonce, expires]
            )

        await self._db.run(issue)
        return f"{nonce}.{expires}.{self._sign(nonce, expires)}"

    async def async_consume(self, state: str) -> bool:
        nonce, expires = self._verified(state or "")
        if nonce is None or expires <= self._clock():
            return False

        def take(db: Database) -> bool:
            cursor = db.execute(
                "DELETE FROM oauth_states WHERE nonce = ? AND expires_at = ? AND expires_at > ?",
                [nonce, expires, int(self._clock())],
            )
            return cursor.rowcount == 1

        return await self._db.run(take)

    def _sign(self, nonce: str, expires: int) -> str:
        message = f"{nonce}.{expires}".encode("ascii")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _verified(self, state: str) -> tuple[str | None, int]:
        parts = state.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
            return None, 0
        nonce, expires, signature = parts[0], int(parts[1]), parts[2]
        try:
            nonce.encode("ascii")
        except UnicodeEncodeError:
            return None, 0
        if not hmac.compare_digest(signature.encode(), self._sign(nonce, expires).encode()):
            return None, 0
        return nonce, expires
