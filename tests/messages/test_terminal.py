"""The terminal rendering of `--dry-run` and the demo reads mrkdwn as a person would."""

from bot.messages.terminal import mrkdwn_to_text


def test_links_show_their_label_and_target() -> None:
    text = mrkdwn_to_text("<https://app.example/m/1|Flux &amp; Co> and <https://x.example/>")
    assert text == "Flux & Co (https://app.example/m/1) and https://x.example/"


def test_a_date_token_shows_its_fallback_alone() -> None:
    text = mrkdwn_to_text("Back · <!date^1796274000^{date_short_pretty} {time}|Thu 03 Dec 05:00>")
    assert text == "Back · Thu 03 Dec 05:00"
