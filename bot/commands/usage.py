"""The `/usage` parser: the text after `/usage` in, a :class:`UsageRequest` or a
:class:`GrammarError` out. Never raises."""

from __future__ import annotations

from bot.budgets.types import ScopeKind
from bot.commands.help import USAGE_USAGE
from bot.commands.requests import GrammarError, RangePreset, ScopeRef, UsageRange, UsageRequest
from bot.commands.words import (
    RANGES,
    SCOPE_WHAT,
    Cursor,
    Problem,
    did_you_mean,
    given_once,
    quoted,
    read_range,
    read_scope,
    scope_ref,
    tokenize,
)

_USAGE_FILTERS = {"project": ScopeKind.PROJECT, "user": ScopeKind.USER, "model": ScopeKind.MODEL}


def parse_usage(text: str) -> UsageRequest | GrammarError:
    """Parse the text after `/usage` (SPEC §4)."""
    try:
        return _parse_usage(Cursor(tokenize(text)))
    except Problem as problem:
        return GrammarError(problem.message, USAGE_USAGE)


def _parse_usage(cursor: Cursor) -> UsageRequest:
    filters: dict[ScopeKind, tuple[ScopeRef, str]] = {}
    found_range: tuple[UsageRange, str] | None = None
    public: str | None = None
    while (tok := cursor.next()) is not None:
        word = tok.word
        if word == "public":
            given_once("`public`", public, tok)
            public = tok.raw
        elif word in _USAGE_FILTERS:
            kind = _USAGE_FILTERS[word]
            value = cursor.next()
            if value is None:
                raise Problem(f"{quoted(tok.raw)} needs {SCOPE_WHAT[kind]} after it.")
            raw = f"{tok.raw} {value.raw}"
            filters[kind] = (scope_ref(kind, value.value, raw), _once_filter(filters, kind, raw))
        elif (scope := read_scope(tok, cursor)) is not None:
            if scope.kind not in _USAGE_FILTERS.values():
                raise Problem(
                    "`/usage` can be narrowed by `project`, `user` and `model`,"
                    f" not {quoted(tok.raw)}."
                )
            filters[scope.kind] = (scope, _once_filter(filters, scope.kind, tok.raw))
        elif (found := read_range(tok)) is not None:
            given_once("the range", found_range and found_range[1], tok)
            found_range = (found, tok.raw)
        else:
            raise Problem(
                f"I don't understand {quoted(tok.raw)}."
                + did_you_mean(word, [*_USAGE_FILTERS, *RANGES, "public"])
            )
    return UsageRequest(
        range=found_range[0] if found_range else RangePreset.LAST_24H,
        project=filters[ScopeKind.PROJECT][0] if ScopeKind.PROJECT in filters else None,
        user=filters[ScopeKind.USER][0] if ScopeKind.USER in filters else None,
        model=filters[ScopeKind.MODEL][0] if ScopeKind.MODEL in filters else None,
        public=public is not None,
    )


def _once_filter(filters: dict[ScopeKind, tuple[ScopeRef, str]], kind: ScopeKind, raw: str) -> str:
    if kind in filters:
        raise Problem(
            f"You gave `{kind.value}` twice ({quoted(filters[kind][1])} and {quoted(raw)});"
            " give it once."
        )
    return raw
