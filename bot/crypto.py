"""Secrets at rest, sealed with `BUDGET_BOT_SECRET_KEY`, so that the database file never holds
a Slack token or a Scenario secret in clear (SPEC §8).

Sealing is `cryptography`'s Fernet (AES-128-CBC with an HMAC-SHA256 tag, a timestamp and a
random IV per message): a well-reviewed recipe rather than one of ours. The setting may hold
several comma-separated keys for rotation: the first seals, any of them opens, and
:meth:`Sealer.reseal` moves a sealed value onto the first key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FORMS = "a Fernet key (32 url-safe base64 bytes; `budget-bot keygen` prints one)"
UNSEALABLE = "a stored secret can't be opened with BUDGET_BOT_SECRET_KEY"


class SecretKeyError(ValueError):
    """BUDGET_BOT_SECRET_KEY is not usable; the message says why, never repeating it."""


class UnsealError(Exception):
    """A sealed value that no configured key opens: tampered with, or sealed by a key that
    is no longer configured."""


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


@dataclass(frozen=True)
class Sealer:
    _fernet: MultiFernet
    _primary: Fernet
    _primary_key: bytes = field(repr=False)  # never in a log line

    @classmethod
    def from_setting(cls, value: str) -> Sealer:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise SecretKeyError(f"empty: it must be {KEY_FORMS}")
        keys = []
        for position, part in enumerate(parts, 1):
            try:
                keys.append(Fernet(part.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                which = "" if len(parts) == 1 else f" (key {position} of {len(parts)})"
                raise SecretKeyError(f"not a usable key{which}: it must be {KEY_FORMS}") from None
        return cls(MultiFernet(keys), keys[0], parts[0].encode("ascii"))

    def seal(self, secret: str) -> str:
        # surrogatepass: any Python string round-trips, none raises with itself attached.
        return self._primary.encrypt(secret.encode("utf-8", "surrogatepass")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8", "surrogatepass")
        except (InvalidToken, UnicodeError):
            raise UnsealError(UNSEALABLE) from None

    def sealed_with_first(self, sealed: str) -> bool:
        try:
            self._primary.decrypt(sealed.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True

    def reseal(self, sealed: str) -> str:
        """The same secret sealed with the first key (after a rotation)."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UnsealError(UNSEALABLE) from None

    def derive(self, purpose: bytes) -> bytes:
        """A key for another use (signing the OAuth state), derived from the first key, so
        that one setting is enough; knowing it tells nothing about the sealing key."""
        primary = base64.urlsafe_b64decode(self._primary_key)
        return hmac.new(primary, b"budget-bot:" + purpose, hashlib.sha256).digest()
