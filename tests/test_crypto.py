"""Secrets at rest: sealing with BUDGET_BOT_SECRET_KEY, key rotation, and refusing an unusable
key in one line that never repeats it."""

from __future__ import annotations

import base64
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings
from bot.crypto import Sealer, SecretKeyError, UnsealError, new_key

ROOT = Path(__file__).resolve().parents[1]
BASE64 = set(string.ascii_letters + string.digits + "-_=")
KEY, OLD = new_key(), new_key()


@given(st.text() | st.text(st.characters(categories=["Cs"])))
def test_a_sealed_secret_opens_to_itself_and_does_not_show_it(secret: str) -> None:
    sealer = Sealer.from_setting(KEY)
    sealed = sealer.seal(secret)
    assert sealer.open(sealed) == secret
    if len(secret) >= 4 and not set(secret) <= BASE64:  # else it may occur by chance
        assert secret not in sealed


def test_sealing_twice_gives_different_texts() -> None:
    sealer = Sealer.from_setting(KEY)
    assert sealer.seal("xoxb-same") != sealer.seal("xoxb-same")  # a fresh IV each time


def test_rotation_the_first_key_seals_any_key_opens_and_reseal_moves_to_the_first() -> None:
    before = Sealer.from_setting(OLD).seal("secret-1")
    rotated = Sealer.from_setting(f"{KEY}, {OLD}")
    assert rotated.open(before) == "secret-1"
    moved = rotated.reseal(before)
    assert Sealer.from_setting(KEY).open(moved) == "secret-1"  # the old key is no longer needed
    with pytest.raises(UnsealError):
        Sealer.from_setting(OLD).open(rotated.seal("secret-2"))


def flip(sealed: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[position] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")


@pytest.mark.parametrize("position", [9, 30, -1])  # the IV, the ciphertext, the HMAC tag
def test_a_tampered_or_foreign_value_is_refused(position: int) -> None:
    sealer = Sealer.from_setting(KEY)
    sealed = sealer.seal("xoxb-tampered")
    for refuse in (sealer.open, sealer.reseal):
        with pytest.raises(UnsealError):
            refuse(flip(sealed, position))
    with pytest.raises(UnsealError):
        Sealer.from_setting(new_key()).open(sealed)
    with pytest.raises(UnsealError):
        sealer.open("not a sealed value at all")


@pytest.mark.parametrize("setting", ["not-a-key", "short", f"{KEY},nope", "é" * 44, " , "])
def test_an_unusable_key_is_one_line_that_never_repeats_it(setting: str) -> None:
    with pytest.raises(SecretKeyError):
        Sealer.from_setting(setting)
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, budget_bot_secret_key=setting)
    message = str(refused.value)
    assert refused.value.__context__ is None and refused.value.__cause__ is None
    assert "\n" not in message and "BUDGET_BOT_SECRET_KEY" in message
    assert "keygen" in message
    for part in setting.split(","):
        if part.strip() and part.strip() != KEY:
            assert part.strip() not in message
    assert KEY not in message


def test_a_blank_key_counts_as_unset_and_a_good_one_gives_a_sealer() -> None:
    assert load_settings(_env_file=None, budget_bot_secret_key="  ").sealer is None
    sealer = load_settings(_env_file=None, budget_bot_secret_key=KEY).sealer
    assert sealer is not None and sealer.open(sealer.seal("s")) == "s"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BUDGET_BOT", "SLACK"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keygen_prints_a_new_usable_key_even_when_the_configured_one_is_broken(
    tmp_path: Path,
) -> None:
    first = run(tmp_path, "keygen", BUDGET_BOT_SECRET_KEY="broken")
    second = run(tmp_path, "keygen")
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key != second.stdout.strip()
    assert Sealer.from_setting(key).open(Sealer.from_setting(key).seal("ok")) == "ok"


def test_a_command_refuses_to_start_with_an_unusable_key(tmp_path: Path) -> None:
    done = run(tmp_path, "migrate", BUDGET_BOT_SECRET_KEY="broken-key-value")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "BUDGET_BOT_SECRET_KEY" in done.stderr
    assert "broken-key-value" not in done.stderr
    assert not list(tmp_path.glob("*.db"))  # nothing was created
