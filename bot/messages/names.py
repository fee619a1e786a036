"""Answering a name that matched nothing or several things, with the candidates."""

from __future__ import annotations

from bot.messages.mrkdwn import escape
from bot.scenario.names import Ambiguous, Unknown


def describe(result: Ambiguous | Unknown, what: str) -> str:
    """A polite answer naming the candidates, as mrkdwn: Scenario's names and what was typed
    are escaped (a project called `<!channel>` pings nobody)."""
    typed = escape(result.text)
    if isinstance(result, Ambiguous):
        listed = ", ".join(f"`{escape(e.name)}`" for e in result.candidates)
        return f"“{typed}” matches several {what}s: {listed}. Which one did you mean?"
    if result.suggestions:
        listed = ", ".join(f"`{escape(e.name)}`" for e in result.suggestions)
        return f"I don't know a {what} called “{typed}”. Did you mean {listed}?"
    return f"I don't know a {what} called “{typed}”."
