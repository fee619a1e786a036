"""Block Kit as plain terminal text, for `--dry-run` and the demo. Pure."""

from __future__ import annotations

import re
from typing import Any

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^>]+)>")


def mrkdwn_to_text(text: str) -> str:
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = _BARE_LINK.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


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
