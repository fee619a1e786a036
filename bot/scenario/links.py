"""Links into the Scenario web app (base ``SCENARIO_APP_URL``), as pure functions.

Only pages observed in Scenario's own help articles are linked: models, assets, the API
keys settings and the team page. There is no known public page for a job or a project.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["api_keys_url", "asset_url", "model_url", "team_url"]


def _base(base: str) -> str:
    return str(base).rstrip("/")


def model_url(base: str, model_id: str) -> str:
    """``<base>/models/<modelId>``."""
    return f"{_base(base)}/models/{quote(model_id, safe='')}"


def asset_url(base: str, asset_id: str) -> str:
    """``<base>/assets?openAssetId=<assetId>``."""
    return f"{_base(base)}/assets?openAssetId={quote(asset_id, safe='')}"


def api_keys_url(base: str) -> str:
    return f"{_base(base)}/settings/api"


def team_url(base: str) -> str:
    return f"{_base(base)}/team"
