"""Typed failures of the Scenario API, with messages fit to show in Slack.

Every message is built by this module or the client from the status, a short reason and
the server's own message (already stripped of the credentials by the client), so neither
``str(error)`` nor ``repr(error)`` can carry the API secret or the Authorization header.
``cause`` is a short, stable label for grouping ("3 checks failed: outage").
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "MAX_RANGE_DAYS",
    "BadCredentials",
    "BadRequest",
    "Forbidden",
    "NotFound",
    "RangeTooLong",
    "RateLimited",
    "ScenarioError",
    "Unavailable",
]

# GET /usages refuses custom ranges wider than this (SDK docstring of usages.list).
MAX_RANGE_DAYS = 120


class ScenarioError(Exception):
    """Base of every Scenario failure the client raises.

    ``message`` (also ``str(error)``) is a sentence a Slack user can act on; ``status`` is
    the HTTP status when there was a response.
    """

    cause: ClassVar[str] = "scenario error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class BadCredentials(ScenarioError):
    """401: the API key/secret pair was refused."""

    cause = "bad credentials"

    def __init__(self, message: str | None = None, *, status: int | None = 401) -> None:
        super().__init__(
            message
            or "Scenario refused the API key and secret (HTTP 401). "
            "Check SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET.",
            status=status,
        )


class Forbidden(ScenarioError):
    """403: the credentials are valid but may not see this team or resource."""

    cause = "forbidden"

    def __init__(self, message: str | None = None, *, status: int | None = 403) -> None:
        super().__init__(
            message
            or "Scenario denied access (HTTP 403): the API key lacks permission "
            "for this team or resource.",
            status=status,
        )


class NotFound(ScenarioError):
    """404: no such team, model, job or path."""

    cause = "not found"

    def __init__(self, message: str | None = None, *, status: int | None = 404) -> None:
        super().__init__(message or "Scenario has no such resource (HTTP 404).", status=status)


class BadRequest(ScenarioError):
    """400 (and other 4xx not covered above): Scenario rejected the request itself.

    ``server_message`` is what the server said, read defensively from ``message``,
    ``reason``, ``error`` or ``details``; None when it said nothing readable.
    """

    cause = "bad request"

    def __init__(
        self,
        server_message: str | None = None,
        *,
        status: int | None = 400,
        message: str | None = None,
    ) -> None:
        self.server_message = server_message
        code = f"HTTP {status}" if status is not None else "bad request"
        text = f"Scenario rejected the request ({code})"
        text += f": {server_message}" if server_message else "."
        super().__init__(message or text, status=status)


class RateLimited(ScenarioError):
    """429: too many requests, or a plan limit reached. ``retry_after`` in seconds."""

    cause = "rate limited"

    def __init__(
        self,
        retry_after: float | None = None,
        *,
        status: int | None = 429,
        message: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        text = "Scenario is rate-limiting requests (HTTP 429)"
        if retry_after is not None and retry_after > 0:
            text += f"; try again in {retry_after:.0f} s."
        else:
            text += "; try again later."
        super().__init__(message or text, status=status)


class Unavailable(ScenarioError):
    """5xx, a connection error, a timeout, or a body that is not the JSON expected."""

    cause = "outage"

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        default = (
            f"Scenario is unavailable (HTTP {status}); try again later."
            if status is not None
            else "Scenario could not be reached; try again later."
        )
        super().__init__(message or default, status=status)


class RangeTooLong(ScenarioError):
    """Refused locally: GET /usages accepts custom ranges of at most 120 days."""

    cause = "range too long"

    def __init__(self, days: float, *, limit_days: int = MAX_RANGE_DAYS) -> None:
        self.days = days
        self.limit_days = limit_days
        super().__init__(
            f"That range spans {round(days, 1):g} days; Scenario reports at most {limit_days} days "
            "at a time. Pick a shorter range."
        )


class BillingPeriodUnavailable(ScenarioError):
    """Billing budgets need the plan period, which Scenario did not give (no team ID set,
    or no current period in the team's limits)."""

    cause = "billing period unavailable"
