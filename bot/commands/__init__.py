"""The slash-command grammar: the text after `/usage` or `/budget` in, a typed request out.

`requests` holds the types, `words` the tokenizer and one parser per kind of token,
`usage` and `budget` one parser per command, `help` the usage lines and help text.

Pure: no Slack, no Scenario, no clock. :func:`parse_usage` and :func:`parse_budget` return a
frozen request dataclass or a :class:`GrammarError` (what was wrong, with the offending token
quoted, and the right form of the command). They never raise.

Decisions worth knowing (SPEC §4 is the contract):

- Limits are :class:`~decimal.Decimal`, so `12.5k` and `1.1k` are exactly 12500 and 1100 CU
  (a float would make `1.1k` 1100.0000000000002). They are positive, at most 1e12 CU, with at
  most two decimals once the `k`/`m` suffix is applied.
- A date range includes both ends: `2026-11-01..2026-11-30` is the whole of November (30 days)
  and `2026-11-05..2026-11-05` is that one day. "At most 120 days" counts both ends.
  :attr:`DateRange.end_exclusive` gives the half-open upper bound.
- Names and IDs (projects, users, keys, models, `#channel` names) are kept as typed, after
  unwrapping Slack's escaping; resolving them is the caller's job, with Scenario and Slack.
- Every request carries ``public`` (SPEC §4: replies are ephemeral unless the user adds it).
- Unknown words, duplicates (`5k … 6k`, `public public`) and contradictions
  (`forecast no-forecast`) are errors rather than guesses.
- Keywords are case-insensitive and only count when typed bare: `"public"` in quotes is a name.
"""
