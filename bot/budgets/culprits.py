"""Who and what spent CU: top models, people, API keys, projects and jobs, named and linked —
for alerts, `/usage` and the digest alike. Pure.

One way to name them (:class:`Names`): people by full name, else e-mail, else ID; API keys
by their name, else their key ID; models and projects by name, else ID — from the usage
response's own entities first, then the team's directory.

Totals per model and per user come from the window's aggregate sections (exact); the
costliest jobs come from the activity log, which is paged and may be cut short — then
the attribution says it is partial rather than pretending to be complete.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.budgets.types import Scope, ScopeKind
from bot.scenario.links import api_keys_url, asset_url, model_url
from bot.scenario.models import Activity, Entities, UsagesResponse, cu_per_model, totals_per_user
from bot.scenario.names import Directory

TOP = 5


@dataclass(frozen=True, slots=True)
class Culprit:
    id: str
    name: str
    cu: float
    url: str | None = None
    is_api_key: bool = False


@dataclass(frozen=True, slots=True)
class Names:
    """The one way to name and link what spent (see the module's docstring)."""

    app_url: str
    entities: Entities = field(default_factory=Entities)
    directory: Directory = field(default_factory=Directory)

    def user(self, user_id: str, cu: float = 0.0) -> Culprit:
        """A person, or an API key (a key is a user of its own in Scenario's usage data)."""
        entity = self.entities.user(user_id)
        key = self.directory.key(user_id)
        if key is not None or (entity is not None and entity.is_api_key):
            name = key.name if key else (entity and entity.api_key_id) or user_id
            return Culprit(user_id, name, cu, api_keys_url(self.app_url), is_api_key=True)
        member = self.directory.member(user_id)
        full_name = (entity and entity.full_name) or (member and next(iter(member.aliases), None))
        email = (entity and entity.email) or (member and member.name)
        return Culprit(user_id, full_name or email or user_id, cu)

    def model(self, model_id: str, cu: float = 0.0) -> Culprit:
        entity = self.entities.model(model_id)
        name = (entity and entity.name) or self.directory.name_of(model_id) or model_id
        return Culprit(model_id, name, cu, model_url(self.app_url, model_id))

    def project(self, project_id: str, cu: float = 0.0) -> Culprit:
        return Culprit(project_id, self.directory.name_of(project_id) or project_id, cu)

    def top(
        self, name: Callable[[str, float], Culprit], sums: Mapping[str, float], n: int = TOP
    ) -> tuple[Culprit, ...]:
        """The `n` largest positive sums, largest first, each named by `name` (e.g.
        ``names.user``)."""
        return tuple(name(key, cu) for key, cu in top_n(sums, n))


@dataclass(frozen=True, slots=True)
class JobCulprit:
    job_id: str
    cu: float
    job_type: str
    model: Culprit | None
    user: Culprit | None
    asset_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Attribution:
    models: tuple[Culprit, ...] = ()
    users: tuple[Culprit, ...] = ()
    jobs: tuple[JobCulprit, ...] = ()
    partial: bool = False


def attribute(
    scope: Scope,
    window: UsagesResponse,
    activity: UsagesResponse | None,
    app_url: str,
    *,
    directory: Directory | None = None,
    top: int = TOP,
) -> Attribution:
    names = Names(app_url, _merged_entities(window, activity), directory or Directory())
    entries = [e for e in (activity.activity if activity else []) if _in_scope(scope, e)]

    if scope.kind in (ScopeKind.TEAM, ScopeKind.PROJECT):
        # The budget's own read carries per-model totals only when a model budget needed
        # them; otherwise the attribution read brought them.
        per_model = cu_per_model(window if window.model_usages or activity is None else activity)
        per_user = {user: t.spend for user, t in totals_per_user(window).items()}
    else:
        # The aggregate sections are team-wide; inside one user or model, count the log.
        per_model, per_user = _sum_by(entries, "model"), _sum_by(entries, "user")

    models = names.top(names.model, per_model, top)
    users = names.top(names.user, per_user, top)
    jobs = tuple(_jobs(entries, names, top))
    partial = activity is None or activity.activity_truncated
    return Attribution(models=models, users=users, jobs=jobs, partial=partial)


def _in_scope(scope: Scope, entry: Activity) -> bool:
    if scope.kind in (ScopeKind.USER, ScopeKind.KEY):
        return entry.user_id == scope.ref
    if scope.kind is ScopeKind.MODEL:
        return entry.data.model_id == scope.ref
    return True  # team, and project (the call itself was filtered)


def _sum_by(entries: list[Activity], what: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for entry in entries:
        key = entry.data.model_id if what == "model" else entry.user_id
        if key and entry.creative_units_cost:
            sums[key] += entry.creative_units_cost
    return dict(sums)


def top_n(sums: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    """The `n` largest positive entries, largest first."""
    return heapq.nlargest(n, ((k, v) for k, v in sums.items() if v > 0), key=lambda kv: kv[1])


def _merged_entities(*responses: UsagesResponse | None) -> Entities:
    merged = Entities()
    for response in responses:
        if response is not None:
            merged.models.extend(response.entities.models)
            merged.users.extend(response.entities.users)
            merged.jobs.extend(response.entities.jobs)
            merged.assets.extend(response.entities.assets)
    return merged


def _jobs(entries: list[Activity], names: Names, top: int) -> list[JobCulprit]:
    per_job: dict[str, float] = defaultdict(float)
    first: dict[str, Activity] = {}
    for entry in entries:
        job_id = entry.data.job_id
        if job_id and entry.creative_units_cost:
            per_job[job_id] += entry.creative_units_cost
            first.setdefault(job_id, entry)
    result = []
    for job_id, cu in top_n(per_job, top):
        entry = first[job_id]
        job = names.entities.job(job_id)
        model_id = entry.data.model_id
        assets = list(job.metadata.asset_ids) if job else []
        if not assets and entry.data.asset_id:
            assets = [entry.data.asset_id]
        result.append(
            JobCulprit(
                job_id=job_id,
                cu=cu,
                job_type=(job.job_type if job and job.job_type else entry.action),
                model=names.model(model_id) if model_id else None,
                user=names.user(entry.user_id) if entry.user_id else None,
                asset_urls=tuple(asset_url(names.app_url, a) for a in assets[:3]),
            )
        )
    return result
