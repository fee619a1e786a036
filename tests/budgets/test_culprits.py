"""One way to name what spent, whatever asks: people by full name, else e-mail, else ID; API
keys by their name, else key ID; models and projects by name, else ID."""

from __future__ import annotations

import httpx

from bot.budgets.culprits import Names
from bot.scenario.client import ScenarioClient
from bot.scenario.models import Entities, EntityModel, EntityUser
from bot.scenario.names import Directory, Entry, load_people

APP = "https://app.example"
DIRECTORY = Directory(
    projects=(Entry("proj_1", "Game Art"),),
    members=(Entry("u_ann", "ann@example.com", ("Ann Lee",)), Entry("u_bob", "bob@example.com")),
    keys=(Entry("u_ci", "CI pipeline", ("api_XYZ",)),),
    models=(Entry("model_1", "Flux Dev"),),
)


def test_a_person_is_named_by_full_name_then_email_then_id() -> None:
    with_entity = Entities(users=[EntityUser(id="u_bob", email="b@x", full_name="Bob Roe")])
    assert Names(APP, with_entity, DIRECTORY).user("u_bob").name == "Bob Roe"
    assert Names(APP, Entities(), DIRECTORY).user("u_ann").name == "Ann Lee"  # the directory's
    assert Names(APP, Entities(), DIRECTORY).user("u_bob").name == "bob@example.com"
    assert Names(APP).user("u_zed").name == "u_zed"
    assert not Names(APP, Entities(), DIRECTORY).user("u_bob").is_api_key


def test_an_api_key_is_named_by_its_name_then_its_key_id() -> None:
    entity = Entities(users=[EntityUser(id="u_ci", is_api_key=True, api_key_id="api_XYZ")])
    named = Names(APP, entity, DIRECTORY).user("u_ci", 12.0)
    assert (named.name, named.is_api_key, named.cu) == ("CI pipeline", True, 12.0)
    assert named.url == f"{APP}/settings/api"
    unnamed = Names(APP, entity).user("u_ci")
    assert (unnamed.name, unnamed.is_api_key) == ("api_XYZ", True)
    # Known as a key from the directory alone (usage data may carry no entity).
    assert Names(APP, Entities(), DIRECTORY).user("u_ci").is_api_key


def test_models_and_projects_by_name_then_id_and_models_are_linked() -> None:
    entity = Entities(models=[EntityModel(id="model_2", name="Kling Video")])
    names = Names(APP, entity, DIRECTORY)
    assert names.model("model_2").name == "Kling Video"
    assert names.model("model_1").name == "Flux Dev"
    assert names.model("model_9").name == "model_9"
    assert names.model("model_1").url is not None and "model_1" in names.model("model_1").url
    assert names.project("proj_1").name == "Game Art"
    assert names.project("proj_9").name == "proj_9"


def test_top_ranks_positive_sums_largest_first() -> None:
    names = Names(APP, Entities(), DIRECTORY)
    ranked = names.top(names.user, {"u_ann": 5.0, "u_ci": 9.0, "u_bob": 0.0}, 5)
    assert [(c.name, c.cu) for c in ranked] == [("CI pipeline", 9.0), ("Ann Lee", 5.0)]


async def test_the_team_read_names_keys_and_a_nameless_key_by_its_key_id() -> None:
    team = {
        "team": {
            "id": "team_t",
            "users": [{"id": "u_ann", "email": "ann@example.com"}],
            "keys": [
                {"id": "u_ci", "apiKeyId": "api_CI", "name": "CI pipeline"},
                {"id": "u_old", "apiKeyId": "api_OLD", "name": ""},
            ],
        }
    }
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json=team)

    client = ScenarioClient(
        base_url="http://scenario.test/v1",
        api_key="k",
        api_secret="s",
        team_id="team_t",
        transport=httpx.MockTransport(answer),
    )
    try:
        people = await load_people(client)
    finally:
        await client.aclose()
    assert asked == ["/v1/teams/team_t"]  # one request
    names = Names(APP, Entities(), people)
    assert names.user("u_ci").name == "CI pipeline"
    assert (names.user("u_old").name, names.user("u_old").is_api_key) == ("api_OLD", True)
    assert names.user("u_ann").name == "ann@example.com"


async def test_without_a_team_id_the_team_read_asks_nothing() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    client = ScenarioClient(
        base_url="http://scenario.test/v1",
        api_key="k",
        api_secret="s",
        transport=httpx.MockTransport(refuse),
    )
    try:
        assert await load_people(client) == Directory()
    finally:
        await client.aclose()
