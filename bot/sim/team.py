"""A deterministic synthetic Scenario team: the single source of truth behind the simulator.

Everything the simulator serves (usages, activity, limits, team, jobs) is derived from one
sorted list of :class:`Job` records, so every view agrees with every other and with the
oracle methods (:meth:`SyntheticTeam.cu_between`, :meth:`SyntheticTeam.jobs_between`) that
tests use to compute the expected answer independently of the HTTP layer.

Money convention (consistent with the SDK's ``total = value + discount``): ``cu_cost`` is
the Compute Units actually charged (what counts against budgets and the plan allowance),
``cu_discount`` is the non-negative amount that was waived, so the list price is
``cu_cost + cu_discount``. Generated costs are multiples of 0.25, which binary floats hold
exactly, so sums agree bit for bit whatever order they are added in.
"""

from __future__ import annotations

import base64
import bisect
import calendar
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HOUR_MS = 3_600_000
_DEFAULT_CREATED = datetime(2024, 1, 8, 9, 30, tzinfo=UTC)

# How many days of history before the anchor and of future after it the built timeline
# holds (the replay tests advance a clock up to ~35 days past the anchor).
HISTORY_DAYS = 135
FUTURE_DAYS = 46


def to_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, floored, for a tz-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: every time must be tz-aware")
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def iso_ms(moment: datetime) -> str:
    """The API's time format: UTC, millisecond precision, ``Z`` suffix (JS ``toISOString``)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# Asset metadata `type` → asset `source`; both are enums in the SDK and they are spelled
# differently for inference outputs, so the mapping is spelled out.
ASSET_SOURCES: dict[str, str] = {
    "inference-txt2img": "inference-txt",
    "inference-img2img": "inference-img",
    "txt2img": "txt2img",
    "img2img": "img2img",
    "upscale": "upscale",
    "background-removal": "background-removal",
    "texture": "texture",
    "vectorization": "vectorization",
    "txt2video": "txt2video",
    "img2video": "img2video",
    "img23d": "img23d",
    "txt23d": "txt23d",
}


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    created_at: datetime = _DEFAULT_CREATED


@dataclass(frozen=True, slots=True)
class User:
    """A team member: a human (email, full name) or an API key (``is_api_key``)."""

    id: str
    email: str | None = None
    full_name: str | None = None
    is_api_key: bool = False
    api_key_id: str | None = None
    api_key_status: str | None = None  # "active" | "inactive" | "deleted" (API keys only)
    key_name: str | None = None
    key_scope: str | None = None  # "team" | "project" (API keys only)
    role: str = "member"  # team role of humans: "admin" | "member"
    project_ids: tuple[str, ...] = ()
    created_at: datetime = _DEFAULT_CREATED


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    name: str
    type: str = "flux.1"  # SDK `Model.type`
    capabilities: tuple[str, ...] = ("txt2img",)
    short_description: str | None = None
    custom: bool = False
    cu_per_job: float = 4.0  # mean list price of one job, informative only
    created_at: datetime = _DEFAULT_CREATED


@dataclass(frozen=True, slots=True)
class Job:
    """One billed job. Times are normalised to UTC at millisecond precision."""

    id: str
    time: datetime
    user_id: str
    project_id: str
    model_id: str
    cu_cost: float
    cu_discount: float = 0.0
    job_type: str = "inference"  # SDK `jobType`
    action: str = "txt2img"  # activity `action`
    usage_name: str = "images-generation"  # `usages[].usageName` the job counts under
    status: str = "success"
    asset_ids: tuple[str, ...] = ()
    asset_kind: str = "image"
    asset_type: str = "inference-txt2img"  # asset `metadata.type`

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"job {self.id}: time must be tz-aware")
        # Millisecond precision keeps the half-open [start, end) windows exact on the
        # integer-millisecond grid the simulator and the oracle share.
        if self.time.microsecond % 1000 or self.time.utcoffset():
            object.__setattr__(self, "time", from_ms(to_ms(self.time)))
        object.__setattr__(self, "asset_ids", tuple(self.asset_ids))
        if self.cu_cost < 0 or self.cu_discount < 0:
            raise ValueError(f"job {self.id}: cu_cost and cu_discount must be >= 0")

    @property
    def list_price(self) -> float:
        return self.cu_cost + self.cu_discount


@dataclass(frozen=True, slots=True)
class Spike:
    """A scripted burst: one API key hammering one expensive model for a few hours."""

    start: datetime
    end: datetime
    user_id: str  # the key's member id (`apiu_…`), as it appears in usages
    api_key_id: str  # the key id (`api_…`)
    model_id: str
    project_id: str
    extra_cu: float  # CU of the spike's own jobs, on top of the normal traffic
    job_count: int


@dataclass(frozen=True, slots=True)
class _ModelSpec:
    name: str
    type: str
    capabilities: tuple[str, ...]
    short_description: str
    custom: bool
    cu: float
    job_type: str
    action: str
    usage_name: str
    asset_kind: str
    asset_type: str
    images: tuple[int, ...] = (1,)


# fmt: off
_CATALOG: tuple[_ModelSpec, ...] = tuple(_ModelSpec(*row) for row in (
    # name, type, capabilities, description, custom, list CU, jobType, action, usageName,
    # asset kind, asset metadata type, images per job (sampled)
    ("Flux Dev", "flux.1", ("txt2img", "img2img"), "Fast general-purpose images", False,
     4.0, "inference", "txt2img", "images-generation", "image", "inference-txt2img",
     (1, 1, 2, 4)),
    ("Flux Pro Ultra", "flux.1.1-pro-ultra", ("txt2img",), "High-resolution renders", False,
     12.0, "inference", "txt2img", "images-generation", "image", "inference-txt2img",
     (1, 1, 2)),
    ("Marketing Style", "flux.1-lora", ("txt2img", "img2img"), "Brand look LoRA", True,
     5.0, "inference", "txt2img", "images-generation", "image", "inference-txt2img",
     (1, 2, 4)),
    ("Game Props", "flux.1-lora", ("img2img", "txt2img"), "Stylised prop sheets", True,
     5.0, "inference", "img2img", "images-generation", "image", "inference-img2img",
     (1, 2, 4)),
    ("GPT Image 1", "gpt-image-1", ("txt2img", "img2img"), "OpenAI image model", False,
     20.0, "openai-image-generation", "txt2img", "images-generation", "image", "txt2img",
     (1, 1, 2)),
    ("Upscaler 4x", "custom", ("img2img",), "Sharp 4x upscaling", False,
     2.0, "upscale", "upscale", "upscale", "image", "upscale", (1,)),
    ("Background Remover", "custom", ("img2img",), "Clean cut-outs", False,
     1.0, "remove-background", "background-removal", "background-removal", "image",
     "background-removal", (1,)),
    ("Texture Forge", "custom", ("txt2img_texture",), "Seamless PBR textures", False,
     8.0, "texture", "texture", "texture", "image", "texture", (1,)),
    ("Vectorizer", "custom", ("img2img",), "Raster to SVG", False,
     1.5, "vectorize", "vectorization", "vectorization", "image", "vectorization", (1,)),
    ("Kling Video", "custom", ("txt2video", "img2video"), "Short video clips", False,
     60.0, "custom", "custom", "custom", "video", "txt2video", (1,)),
    ("Mesh Maker 3D", "custom", ("img23d", "txt23d"), "Game-ready meshes", False,
     30.0, "custom", "custom", "custom", "3d", "img23d", (1,)),
))

_PEOPLE = (
    ("Maya Chen", "admin"), ("Lucas Martin", "member"), ("Priya Raman", "member"),
    ("Tom Becker", "member"), ("Sofia Rossi", "admin"), ("Noah Dubois", "member"),
    ("Aisha Bello", "member"), ("Ken Watanabe", "member"), ("Elena Petrova", "member"),
    ("Omar Haddad", "member"), ("Grace Kim", "member"), ("Diego Alvarez", "member"),
)
_PROJECT_NAMES = ("Marketing", "Game Art", "Product Shots", "Concept Lab", "UA Creatives",
                  "Localization")

# Share of the peak hourly rate by UTC hour: quiet nights, busy afternoons.
_HOURLY = (0.03, 0.03, 0.03, 0.03, 0.03, 0.04, 0.1, 0.25, 0.45, 0.65, 0.8, 0.85,
           0.8, 0.95, 1.0, 1.0, 0.95, 0.8, 0.6, 0.4, 0.25, 0.15, 0.08, 0.05)
# fmt: on
_WEEKEND = 0.15
_PEAK_HUMAN_JOBS_PER_HOUR = 10.0


def _rid(rng: random.Random, prefix: str) -> str:
    """A random 22-character alphanumeric ID (the shape Scenario uses), deterministic in rng."""
    raw = base64.b64encode(rng.getrandbits(128).to_bytes(16, "big"))[:22].decode("ascii")
    return prefix + raw.replace("+", "x").replace("/", "z")


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates used here (λ ≤ ~15).
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _quarter(x: float) -> float:
    """Round to a multiple of 0.25 (exact in binary floating point), at least 0.25."""
    return max(0.25, round(x * 4) / 4)


@dataclass(frozen=True, slots=True)
class _Load:
    """A stream of jobs from one member (or the pool of humans when ``user`` is None)."""

    user: int | None
    rate: float
    models: tuple[int, ...]
    hours: tuple[int, ...] | None = None  # UTC hours when active; None = around the clock
    until_ms: int | None = None


@dataclass(eq=False)
class SyntheticTeam:
    """A Scenario team: projects, members (humans and API keys), models and jobs.

    Build the standard synthetic team with :meth:`build`, or pass explicit lists to make a
    custom timeline (tests do this to script exact crossings)::

        SyntheticTeam(projects=[...], users=[...], models=[...], jobs=[...])

    The oracle methods (:meth:`jobs_between`, :meth:`cu_between`,
    :meth:`billing_period`) compute expected answers without HTTP. Give custom jobs costs in
    multiples of 0.25 to compare sums with ``==``. ``anchor`` defaults to the hour of the
    last job.
    """

    projects: Sequence[Project]
    users: Sequence[User]
    models: Sequence[Model]
    jobs: Sequence[Job]
    team_id: str = "team_SimulatedTeam0000000"
    name: str = "Pixel Forge Studio"
    anchor: datetime | None = None
    spikes: Sequence[Spike] = ()
    plan: str = "cu-team"
    plan_creative_units: float = 60_000.0
    # Paid plans renew monthly from the subscription date (not the 1st); day numbers past
    # a month's end are clamped to its last day, as Stripe does.
    billing_day: int = 17
    billing_hour: int = 14
    created_at: datetime = _DEFAULT_CREATED
    seed: int | None = None
    job_ms: list[int] = field(init=False, repr=False)
    _users: dict[str, User] = field(init=False, repr=False)
    _projects: dict[str, Project] = field(init=False, repr=False)
    _models: dict[str, Model] = field(init=False, repr=False)
    _jobs: dict[str, Job] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.billing_day <= 31 or not 0 <= self.billing_hour <= 23:
            raise ValueError("billing_day must be 1–31 and billing_hour 0–23")
        self.projects = tuple(self.projects)
        self.users = tuple(self.users)
        self.models = tuple(self.models)
        self.spikes = tuple(self.spikes)
        self.jobs = tuple(sorted(self.jobs, key=lambda j: (j.time, j.id)))
        # Epoch milliseconds of `jobs`, index for index: the bisect key of every window query.
        self.job_ms = [to_ms(j.time) for j in self.jobs]
        self._users = {u.id: u for u in self.users}
        self._projects = {p.id: p for p in self.projects}
        self._models = {m.id: m for m in self.models}
        self._jobs = {j.id: j for j in self.jobs}
        if len(self._jobs) != len(self.jobs):
            raise ValueError("job IDs must be unique")
        if self.anchor is None:
            self.anchor = (
                floor_hour(self.jobs[-1].time) if self.jobs else floor_hour(datetime.now(UTC))
            )

    # ----------------------------------------------------------------- construction

    @classmethod
    def build(cls, seed: int = 7, anchor: datetime | None = None) -> SyntheticTeam:
        """The standard synthetic team; same ``seed`` and ``anchor`` → identical data.

        The timeline runs from ``HISTORY_DAYS`` before the anchor's hour to ``FUTURE_DAYS``
        after it. ``anchor`` defaults to the start of the current UTC hour.
        """
        anchor = floor_hour(anchor if anchor is not None else datetime.now(UTC))
        rng = random.Random(seed)
        team_id = _rid(rng, "team_")

        n_projects = rng.randint(3, 6)
        # "Marketing" and "Game Art" always exist so docs and demos can name them.
        names = list(_PROJECT_NAMES[:2]) + rng.sample(_PROJECT_NAMES[2:], n_projects - 2)
        projects = tuple(
            Project(_rid(rng, "proj_"), name, _DEFAULT_CREATED + timedelta(days=3 * i))
            for i, name in enumerate(names)
        )
        models = tuple(
            Model(
                id=_rid(rng, "model_"),
                name=s.name,
                type=s.type,
                capabilities=s.capabilities,
                short_description=s.short_description,
                custom=s.custom,
                cu_per_job=s.cu,
                created_at=_DEFAULT_CREATED + timedelta(days=i),
            )
            for i, s in enumerate(_CATALOG)
        )

        humans: list[User] = []
        for i, (full_name, role) in enumerate(_PEOPLE):
            first, last = full_name.lower().split()
            humans.append(
                User(
                    id=f"{rng.getrandbits(128):032x}",
                    email=f"{first}.{last}@example.com",
                    full_name=full_name,
                    role=role,
                    project_ids=tuple(p.id for p in rng.sample(projects, rng.randint(1, 2))),
                    created_at=_DEFAULT_CREATED + timedelta(days=i),
                )
            )
        marketing, game_art = projects[0], projects[1]
        key_specs = (
            ("CI pipeline", "active", "project", (game_art.id,)),
            ("Batch exporter", "active", "team", ()),
            ("Legacy plugin", "inactive", "project", (marketing.id,)),
        )
        keys = [
            User(
                id=_rid(rng, "apiu_"),
                is_api_key=True,
                api_key_id=_rid(rng, "api_"),
                api_key_status=status,
                key_name=name,
                key_scope=scope,
                role="key",
                project_ids=pids,
                created_at=_DEFAULT_CREATED + timedelta(days=20 + i),
            )
            for i, (name, status, scope, pids) in enumerate(key_specs)
        ]
        users = (*humans, *keys)

        # Per-human taste: activity weight and a few favourite models (by catalog index).
        weights = [rng.uniform(0.3, 2.0) for _ in humans]
        cum_weights = list(_accumulate(weights))
        tastes = [
            (tuple(rng.sample(range(len(_CATALOG)), 4)), tuple(rng.uniform(0.5, 3) for _ in "1234"))
            for _ in humans
        ]

        n_humans = len(humans)
        ci, batch, legacy = n_humans, n_humans + 1, n_humans + 2
        idx = {s.name: i for i, s in enumerate(_CATALOG)}
        loads = (
            _Load(ci, 1.5, (idx["Flux Dev"], idx["Upscaler 4x"], idx["Background Remover"])),
            _Load(batch, 12.0, (idx["Vectorizer"], idx["Upscaler 4x"]), hours=(2, 3)),
            _Load(legacy, 0.5, (idx["Flux Dev"],), until_ms=to_ms(anchor - timedelta(days=60))),
        )
        project_ids_all = tuple(p.id for p in projects)

        start_ms = to_ms(anchor - timedelta(days=HISTORY_DAYS))
        end_ms = to_ms(anchor + timedelta(days=FUTURE_DAYS))
        jobs: list[Job] = []
        for hour_ms in range(start_ms, end_ms, _HOUR_MS):
            hour_index = hour_ms // _HOUR_MS
            # Seeded per absolute hour: moving the anchor does not reshuffle past hours.
            hrng = random.Random(seed * 1_000_003 + hour_index)
            utc_hour = hour_index % 24
            weekday = (hour_index // 24 + 3) % 7  # 1970-01-01 was a Thursday (3)
            day_factor = _WEEKEND if weekday >= 5 else 1.0
            lam = _PEAK_HUMAN_JOBS_PER_HOUR * _HOURLY[utc_hour] * day_factor
            for _ in range(_poisson(hrng, lam)):
                u = hrng.choices(range(n_humans), cum_weights=cum_weights)[0]
                favs, fav_w = tastes[u]
                m = hrng.choices(favs, weights=fav_w)[0]
                pid = hrng.choice(humans[u].project_ids)
                jobs.append(_make_job(hrng, hour_ms, users[u].id, pid, models[m], _CATALOG[m]))
            for load in loads:
                if load.hours is not None and utc_hour not in load.hours:
                    continue
                if load.until_ms is not None and hour_ms >= load.until_ms:
                    continue
                assert load.user is not None
                member = users[load.user]
                for _ in range(_poisson(hrng, load.rate)):
                    m = hrng.choice(load.models)
                    pid = hrng.choice(member.project_ids or project_ids_all)
                    jobs.append(_make_job(hrng, hour_ms, member.id, pid, models[m], _CATALOG[m]))

        srng = random.Random(seed * 7_919 + 17)
        video, gpt = idx["Kling Video"], idx["GPT Image 1"]
        spike_start = floor_hour(anchor) - timedelta(hours=srng.randint(6, 14))
        midnight = anchor.replace(hour=0)
        future_start = midnight + timedelta(days=srng.randint(10, 20), hours=13)
        spikes = (
            _spike(
                srng,
                jobs,
                spike_start,
                3,
                users[ci],
                game_art.id,
                models[video],
                _CATALOG[video],
                (90, 150),
            ),
            _spike(
                srng,
                jobs,
                future_start,
                4,
                users[batch],
                marketing.id,
                models[gpt],
                _CATALOG[gpt],
                (60, 100),
            ),
        )
        return cls(
            projects=projects,
            users=users,
            models=models,
            jobs=jobs,
            team_id=team_id,
            anchor=anchor,
            spikes=spikes,
            billing_day=17,
            billing_hour=14,
            seed=seed,
        )

    # ----------------------------------------------------------------- lookups

    def user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def project(self, project_id: str) -> Project | None:
        return self._projects.get(project_id)

    def model(self, model_id: str) -> Model | None:
        return self._models.get(model_id)

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def humans(self) -> tuple[User, ...]:
        return tuple(u for u in self.users if not u.is_api_key)

    @property
    def api_keys(self) -> tuple[User, ...]:
        return tuple(u for u in self.users if u.is_api_key)

    @property
    def spike(self) -> Spike:
        """The scripted spike in the last day before the anchor."""
        assert self.anchor is not None
        for s in self.spikes:
            if s.start <= self.anchor:
                return s
        raise LookupError("this team has no spike before its anchor")

    @property
    def future_spike(self) -> Spike:
        """The first scripted spike after the anchor."""
        assert self.anchor is not None
        for s in self.spikes:
            if s.start > self.anchor:
                return s
        raise LookupError("this team has no spike after its anchor")

    @property
    def timeline_start(self) -> datetime:
        return self.jobs[0].time if self.jobs else self._anchor()

    @property
    def timeline_end(self) -> datetime:
        return self.jobs[-1].time if self.jobs else self._anchor()

    def _anchor(self) -> datetime:
        assert self.anchor is not None
        return self.anchor

    # ----------------------------------------------------------------- oracle

    def index_range(self, start_ms: int, end_ms: int) -> range:
        """Indices into ``jobs``/``job_ms`` of the jobs with ``start_ms <= time < end_ms``."""
        lo = bisect.bisect_left(self.job_ms, start_ms)
        return range(lo, max(lo, bisect.bisect_left(self.job_ms, end_ms)))

    def job_slice(self, start_ms: int, end_ms: int) -> Sequence[Job]:
        """Jobs with ``start_ms <= time < end_ms`` (epoch milliseconds), oldest first."""
        r = self.index_range(start_ms, end_ms)
        return self.jobs[r.start : r.stop]

    def jobs_between(
        self,
        start: datetime,
        end: datetime,
        *,
        project_ids: Iterable[str] | None = None,
        user_ids: Iterable[str] | None = None,
        model_ids: Iterable[str] | None = None,
    ) -> list[Job]:
        """Jobs with ``start <= time < end`` matching every given filter, oldest first.

        A filter of ``None`` means "any"; an empty collection matches nothing.
        """
        projects = None if project_ids is None else frozenset(project_ids)
        users = None if user_ids is None else frozenset(user_ids)
        models = None if model_ids is None else frozenset(model_ids)
        return [
            j
            for j in self.job_slice(to_ms(start), to_ms(end))
            if (projects is None or j.project_id in projects)
            and (users is None or j.user_id in users)
            and (models is None or j.model_id in models)
        ]

    def cu_between(self, start: datetime, end: datetime, **filters: Iterable[str] | None) -> float:
        """Compute Units charged (``cu_cost``) by the jobs :meth:`jobs_between` matches."""
        return math.fsum(j.cu_cost for j in self.jobs_between(start, end, **filters))

    def billing_period(self, at: datetime) -> tuple[datetime, datetime]:
        """The monthly billing period ``[start, end)`` that contains ``at``."""
        at = at.astimezone(UTC)
        year, month = at.year, at.month
        start = self._period_start(year, month)
        if start > at:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
            start = self._period_start(year, month)
        next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
        return start, self._period_start(next_year, next_month)

    def _period_start(self, year: int, month: int) -> datetime:
        day = min(self.billing_day, calendar.monthrange(year, month)[1])
        return datetime(year, month, day, self.billing_hour, tzinfo=UTC)


def _accumulate(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


def _make_job(
    rng: random.Random,
    hour_ms: int,
    user_id: str,
    project_id: str,
    model: Model,
    spec: _ModelSpec,
    *,
    at_ms: int | None = None,
    force_success: bool = False,
) -> Job:
    when = from_ms(at_ms if at_ms is not None else hour_ms + rng.randrange(_HOUR_MS))
    roll = rng.random()
    status = (
        "success" if force_success or roll < 0.95 else ("failure" if roll < 0.98 else "canceled")
    )
    job_id = _rid(rng, "job_")
    if status != "success":
        # Failed and cancelled jobs are refunded and produce nothing.
        return Job(
            id=job_id,
            time=when,
            user_id=user_id,
            project_id=project_id,
            model_id=model.id,
            cu_cost=0.0,
            cu_discount=0.0,
            job_type=spec.job_type,
            action=spec.action,
            usage_name=spec.usage_name,
            status=status,
            asset_kind=spec.asset_kind,
            asset_type=spec.asset_type,
        )
    n_assets = rng.choice(spec.images)
    price = _quarter(spec.cu * n_assets * rng.uniform(0.8, 1.2))
    discount = 0.0
    if rng.random() < 0.08:
        discount = min(price, _quarter(price * rng.uniform(0.2, 0.5)))
    return Job(
        id=job_id,
        time=when,
        user_id=user_id,
        project_id=project_id,
        model_id=model.id,
        cu_cost=price - discount,
        cu_discount=discount,
        job_type=spec.job_type,
        action=spec.action,
        usage_name=spec.usage_name,
        status=status,
        asset_ids=tuple(_rid(rng, "asset_") for _ in range(n_assets)),
        asset_kind=spec.asset_kind,
        asset_type=spec.asset_type,
    )


def _spike(
    rng: random.Random,
    jobs: list[Job],
    start: datetime,
    hours: int,
    key: User,
    project_id: str,
    model: Model,
    spec: _ModelSpec,
    gap_seconds: tuple[int, int],
) -> Spike:
    """Append a runaway key's burst of jobs to ``jobs`` and describe it."""
    assert key.api_key_id is not None
    start_ms, end_ms = to_ms(start), to_ms(start + timedelta(hours=hours))
    at, extra, count = start_ms, 0.0, 0
    while at < end_ms:
        job = _make_job(rng, 0, key.id, project_id, model, spec, at_ms=at, force_success=True)
        jobs.append(job)
        extra += job.cu_cost
        count += 1
        at += rng.randint(*gap_seconds) * 1000
    return Spike(
        start=start,
        end=from_ms(end_ms),
        user_id=key.id,
        api_key_id=key.api_key_id,
        model_id=model.id,
        project_id=project_id,
        extra_cu=extra,
        job_count=count,
    )
