"""The models, people, keys and jobs behind a spend, as lines of a message. Pure."""

from __future__ import annotations

from bot.budgets.culprits import Attribution, Culprit, JobCulprit
from bot.messages.mrkdwn import Json, clip, cu, escape, link, section


def culprit_sections(attribution: Attribution, total: float) -> list[Json]:
    blocks = []
    if attribution.models:
        lines = [culprit_line(c, total) for c in attribution.models]
        blocks.append(section("*Top models*\n" + "\n".join(lines)))
    if attribution.users:
        lines = [culprit_line(c, total) for c in attribution.users]
        blocks.append(section("*Top users and API keys*\n" + "\n".join(lines)))
    if attribution.jobs:
        lines = [job_line(j) for j in attribution.jobs]
        blocks.append(section("*Costliest jobs*\n" + "\n".join(lines)))
    return blocks


def culprit_line(culprit: Culprit, total: float) -> str:
    share = f" ({culprit.cu / total * 100:.0f} %)" if total > 0 else ""
    icon = "🔑 " if culprit.is_api_key else ""
    return clip(f"• {icon}{link(culprit.url, culprit.name)} — {cu(culprit.cu)}{share}", 400)


def job_line(job: JobCulprit) -> str:
    parts = [f"• `{escape(job.job_id)}` {escape(job.job_type)}"]
    if job.model:
        parts.append(f"on {link(job.model.url, job.model.name)}")
    if job.user:
        icon = "🔑 " if job.user.is_api_key else ""
        parts.append(f"by {icon}{escape(job.user.name)}")
    line = " ".join(parts) + f" — {cu(job.cu)}"
    if job.asset_urls:
        assets = " ".join(link(url, f"asset {i}") for i, url in enumerate(job.asset_urls, 1))
        line += f" · {assets}"
    return clip(line, 500)
