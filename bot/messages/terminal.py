"""Block Kit as plain terminal text, for `--dry-run` and the demo. Pure."""

from __future__ import annotations

import re
from typing import Any

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^>]+)>")


def mrkdwn_to_text(text: str) -> str:
    text = _LINK.sub(_link_text, text)
    text = _BARE_LINK.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link_text(link: re.Match[str]) -> str:
    target, label = link.group(1), link.group(2)
    # `<!date^…|fallback>` is Slack formatting a time for the reader: its fallback is the text.
    return label if target.startswith("!") else f"{label} ({target})"


def render(message: dict[str, Any]) -> str:
    """Headers underlined, sections as text, context dimmed with `·`, buttons as [labels]."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            title = block["text"]["text"]
            lines += [title, "═" * min(len(title), 72)]
        elif kind == "section":
            lines.append(mrkdwn_to_text(block["text"]["text"]))
        elif kind == "context":
            lines += [f"  · {mrkdwn_to_text(e.get('text', ''))}" for e in block["elements"]]
        elif kind == "actions":
            labels = [f"[{e['text']['text']}]" for e in block["elements"] if "text" in e]
            lines.append(" ".join(labels))
        elif kind == "divider":
            lines.append("─" * 40)
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
    if not lines:
        lines.append(message.get("text", ""))
    return "\n".join(lines)
