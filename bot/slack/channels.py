"""Can the bot post where a budget's alerts are to go? Asked before the budget is saved
(SPEC §4), so that the person hears it at once rather than from a delivery problem later.

`conversations.info` tells archived and not-a-member apart; a private channel the bot was
never invited to looks, to it, like no channel at all. Anything else Slack answers (a
workspace that installed the app before it asked for `channels:read`, a rate limit, a slow
answer, an answer that isn't Slack's) means "can't tell": the budget is saved and the
delivery path reports problems as it always did — this check may only refuse what it knows
cannot work. Slack out of reach altogether is said, and nothing is saved: try again.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.delivery import slack_error

log = logging.getLogger(__name__)

ASK_WITHIN = 1.0  # seconds; the modal must answer Slack within 3 s in all

INVITE = "`/invite @Budget Bot`"


def post_problem(error: str | None, channel_id: str) -> str | None:
    """What a Slack error about a channel means for the person, with the fix (mrkdwn)."""
    match error:
        case "channel_not_found":
            return (
                f"I can't see <#{channel_id}>: it is private and I haven't been invited, or "
                f"it no longer exists. Type {INVITE} in that channel, then try again."
            )
        case "not_in_channel":
            return (
                f"I'm not a member of <#{channel_id}>, so I couldn't post its alerts there. "
                f"Type {INVITE} in that channel, then try again."
            )
        case "is_archived":
            return (
                f"Nothing can be posted to <#{channel_id}>: it is archived. Pick another channel."
            )
    return None


async def channel_problem(slack: AsyncWebClient, channel_id: str) -> str | None:
    """Why the bot cannot post to ``channel_id`` and how to fix it (mrkdwn), or None when it
    can — or when Slack does not say."""
    try:
        answer = await asyncio.wait_for(slack.conversations_info(channel=channel_id), ASK_WITHIN)
    except SlackApiError as exc:
        error = slack_error(exc)
        if error == "channel_not_found":
            return post_problem(error, channel_id)
        log.info("channel check of %s not possible: %s", channel_id, error)
        return None
    except TimeoutError:
        log.info("channel check of %s: Slack took over %s s", channel_id, ASK_WITHIN)
        return None
    except (aiohttp.ClientError, OSError):
        # Not "can't tell": Slack itself is out of reach (or SLACK_API_URL is wrong) — say so
        # rather than save a budget whose alerts may have nowhere to go.
        return (
            f"Slack could not be reached to check that I can post in <#{channel_id}>. Try"
            " again in a moment."
        )
    except Exception as exc:
        # An answer slack_sdk cannot read (a proxy's plain-text page): can't tell.
        # The name only: an exception's repr may carry the request's headers (the token).
        log.warning("channel check of %s not possible: %s", channel_id, type(exc).__name__)
        return None
    channel = answer.get("channel") or {}
    if channel.get("is_archived"):
        return post_problem("is_archived", channel_id)
    if channel.get("is_member") is False:
        return post_problem("not_in_channel", channel_id)
    return None
