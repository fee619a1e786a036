"""The usage lines and the help text of `/budget` and `/usage`."""

from __future__ import annotations

USAGE_USAGE = (
    "`/usage [project <name|id>] [user <@mention|email|id>] [model <name|id>] [RANGE] [public]`"
    " — RANGE is `1h`, `24h` (default), `3d`, `7d`, `31d`, `today`, `yesterday`, `this-week`,"
    ' `this-month` or `YYYY-MM-DD..YYYY-MM-DD` — e.g. `/usage project "Game Art" 7d`'
)
_OPTIONS = "[SCOPE] [#channel] [at 50,80,100] [forecast]"
BUDGET_USAGES: dict[str, str] = {
    "list": "`/budget list [public]`",
    "add": f"`/budget add <LIMIT> <PERIOD> {_OPTIONS}` — e.g."
    " `/budget add 12k monthly project:Marketing #gen-ai-spend at 50,90,100 forecast`",
    "edit": "`/budget edit <id> [LIMIT] [PERIOD] [SCOPE] [#channel] [at 50,80,100]"
    " [forecast|no-forecast]` (only what you give changes; `/budget edit <id>` alone opens the"
    " form) — e.g. `/budget edit 3 15k at 80,100`",
    "remove": "`/budget remove <id>` — e.g. `/budget remove 3`",
    "snooze": "`/budget snooze <id> <DURATION>` — DURATION is like `30m`, `4h`, `1d`, `1h30m`"
    " (at most 90 days) or `until-reset` — e.g. `/budget snooze 3 4h`",
    "unsnooze": "`/budget unsnooze <id>` — e.g. `/budget unsnooze 3`",
    "digest": "`/budget digest <HH:MM> [#channel] [weekly [<day>]|monthly] [quiet]` or"
    " `/budget digest off [#channel]` — daily unless `weekly` (on Monday, or the day you give:"
    " `mon`…`sun`) or `monthly` (on the 1st); `quiet` skips spans without spend — e.g."
    " `/budget digest 09:00 #gen-ai-spend weekly`",
    "watch": "`/budget watch [#channel] [low|normal|high]` or `/budget watch off` — alerts on"
    " runaway spend, new API keys and models, and spend at unusual hours, with no limit to set"
    " (`low` alerts less, `high` sooner) — e.g. `/budget watch #gen-ai-spend`",
    "test": "`/budget test <id>` — posts a sample of that budget's alert, with today's real"
    " figures and culprits, to its channel (marked as a test; changes nothing) — e.g."
    " `/budget test 3`",
    "timezone": "`/budget timezone <IANA name>` — e.g. `/budget timezone Europe/Paris`",
    "history": "`/budget history [id]` — e.g. `/budget history 3`",
    "connect": "`/budget connect` — a form for this workspace's Scenario API key, secret and"
    " team ID, checked before it is saved (when the bot is installed in many workspaces)",
    "disconnect": "`/budget disconnect` — forget this workspace's Scenario credentials",
    "help": "`/budget help [subcommand]`",
}
SUBCOMMANDS: tuple[str, ...] = tuple(BUDGET_USAGES)
_BUDGET_OVERVIEW = (
    "`/budget <subcommand>` — one of " + ", ".join(f"`{s}`" for s in SUBCOMMANDS) + "."
    " Try `/budget help`."
)
# Words people reach for that difflib would not match to the real subcommand.
SYNONYMS = {
    "ls": "list",
    "show": "list",
    "new": "add",
    "create": "add",
    "set": "add",
    "update": "edit",
    "change": "edit",
    "modify": "edit",
    "delete": "remove",
    "del": "remove",
    "rm": "remove",
    "mute": "snooze",
    "unmute": "unsnooze",
    "resume": "unsnooze",
    "tz": "timezone",
    "anomaly": "watch",
    "anomalies": "watch",
    "detect": "watch",
    "log": "history",
    "audit": "history",
    "try": "test",
    "sample": "test",
    "alerts": "history",
    "login": "connect",
    "setup": "connect",
    "logout": "disconnect",
    "?": "help",
}


def usage_for(subcommand: str | None) -> str:
    """The usage line of a `/budget` subcommand, `"usage"` for `/usage`, or the overview."""
    if subcommand == "usage":
        return USAGE_USAGE
    return BUDGET_USAGES.get(subcommand or "", _BUDGET_OVERVIEW)


HELP_TEXT = f"""*Scenario Budget Bot* — replies are only visible to you unless you add `public`.

*See spend*
• {USAGE_USAGE}
  Quote names with spaces: `project "Game Art"`. More: `/usage user @ana 7d`, \
`/usage model "Flux Dev" 2026-11-01..2026-11-30` (both dates included, up to 120 days).

*Budgets*
• {BUDGET_USAGES["list"]} — every budget with spend, % used, forecast and state (default)
• {BUDGET_USAGES["add"]}
  `/budget add` alone opens a form.
• {BUDGET_USAGES["edit"]}
• {BUDGET_USAGES["remove"]} (asks for confirmation)
• {BUDGET_USAGES["snooze"]}
• {BUDGET_USAGES["unsnooze"]}
• {BUDGET_USAGES["digest"]}
• {BUDGET_USAGES["watch"]}
• {BUDGET_USAGES["test"]}
• {BUDGET_USAGES["timezone"]}
• {BUDGET_USAGES["history"]} — recent alerts and changes
• {BUDGET_USAGES["connect"]}
• {BUDGET_USAGES["disconnect"]}
• {BUDGET_USAGES["help"]}

*Pieces*
• `LIMIT` — CU, a positive number: `5000`, `12.5k`, `1,500`, `2m`
• `PERIOD` — `daily`, `weekly`, `monthly` (calendar, workspace timezone), `billing` \
(Scenario's plan period), or rolling `24h`, `7d`, `30d`
• `SCOPE` — `team` (default), `project:<name|id>`, `user:<email|id|@mention>`, \
`key:<name|id>`, `model:<name|id>`; quote spaces: `project:"Game Art"`
• `#channel` — where alerts go (default: this channel)
• `at 50,80,100` — alert thresholds in % of the limit, 1–1000 (default `50,80,100`)
• `forecast` — also alert once when the period is projected to end over the limit \
(`no-forecast` turns it off in `edit`)
• Budget IDs are the plain numbers shown by `/budget list` (`3`, not `#3`).
Changing budgets is for workspace admins and the bot's admins."""


def help_text(topic: str | None = None) -> str:
    """The whole grammar (mrkdwn), or one subcommand's usage when ``topic`` names one."""
    if topic is None:
        return HELP_TEXT
    return f"*Usage:* {usage_for(topic)}"
