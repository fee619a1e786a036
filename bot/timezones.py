"""The one time-zone validator: settings, periods and `/budget timezone` all go through it,
so a zone has one spelling everywhere (and hence every period key)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import available_timezones


class UnknownTimezone(ValueError):
    """Not an IANA zone; ``suggestions`` are the closest known names."""

    def __init__(self, name: str, suggestions: tuple[str, ...]) -> None:
        hint = f" Did you mean {', '.join(f'`{c}`' for c in suggestions)}?" if suggestions else ""
        super().__init__(
            f"`{name}` is not a known IANA timezone.{hint} "
            "Use a Region/City name such as `Europe/Paris`, `America/New_York` or `UTC`."
        )
        self.name = name
        self.suggestions = suggestions


def validate_timezone(name: str) -> str:
    """Return the canonical IANA name for ``name``, or raise :class:`UnknownTimezone`.

    Matching ignores case and surrounding blanks (``europe/paris`` → ``Europe/Paris``) so
    that the stored name, and hence every period key, has a single spelling.
    """
    cleaned = name.strip()
    zones = _zone_names()
    if cleaned in zones:
        return cleaned
    folded = _zones_by_casefold().get(cleaned.casefold())
    if folded is not None:
        return folded
    by_casefold = _zones_by_casefold()
    close = difflib.get_close_matches(cleaned.casefold(), list(by_casefold), n=3, cutoff=0.6)
    raise UnknownTimezone(name, tuple(by_casefold[c] for c in close) if cleaned else ())


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # available_timezones() walks the tz database on disk; once per process is enough.
    names = set(available_timezones())
    names.add("UTC")
    return frozenset(names)


@lru_cache(maxsize=1)
def _zones_by_casefold() -> Mapping[str, str]:
    return MappingProxyType({n.casefold(): n for n in sorted(_zone_names())})
