"""The shape of the package, as the README's "How it works" states it: layers that import one
way only, no import cycle (function-local and type-checking imports included), and
`budget-bot serve` loading nothing of the fakes under `bot/sim`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bot"

# Bottom to top. A module may import from its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bot", "bot.config", "bot.crypto", "bot.timezones", "bot.asgi_server"),
    ("bot.scenario",),
    ("bot.budgets",),
    ("bot.commands",),
    ("bot.store",),
    ("bot.reports",),
    ("bot.messages",),
    ("bot.jobs",),
    ("bot.slack",),
    ("bot.web", "bot.demo", "bot.cli", "bot.__main__"),
)
# The fakes stand beside the product: they may use its lower layers (to speak the same
# formats), and only the demo and the CLI's `simulate` and `demo` use them.
SIM = "bot.sim"
SIM_MAY_IMPORT = ("bot", "bot.config", "bot.asgi_server", "bot.scenario")
SIM_USERS = ("bot.demo", "bot.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, me: str | None = None) -> set[str]:
    """Every `bot` module the file imports, wherever the import statement stands."""
    found: set[str] = set()
    me = me or module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from bot.slack import actions` imports the module bot.slack.actions.
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {m for m in found if m == "bot" or m.startswith("bot.")}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) & MODULES for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix != "bot" and module.startswith(prefix + "."))
            if covers and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def is_sim(module: str) -> bool:
    return module == SIM or module.startswith(SIM + ".")


def test_every_module_has_a_layer() -> None:
    homeless = sorted(m for m in MODULES if not is_sim(m) and layer_of(m) is None)
    assert not homeless, f"modules in no layer (add them to LAYERS and the README): {homeless}"


def test_imports_go_one_way() -> None:
    upward = []
    for module, targets in GRAPH.items():
        for target in targets:
            if is_sim(module):
                ok = is_sim(target) or any(
                    target == p or (p != "bot" and target.startswith(p + "."))
                    for p in SIM_MAY_IMPORT
                )
            elif is_sim(target):
                ok = module in SIM_USERS
            else:
                mine, theirs = layer_of(module), layer_of(target)
                ok = mine is not None and theirs is not None and theirs <= mine
            if not ok:
                upward.append(f"{module} → {target}")
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    # Package __init__ files import their submodules to register them; an edge from a
    # package to its own children is not a cycle through the code.
    def edges(module: str) -> set[str]:
        return {t for t in GRAPH[module] if not t.startswith(module + ".") and t != module}

    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(edges(module)):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles[:10])


def test_the_walk_sees_imports_wherever_they_stand(tmp_path: Path) -> None:
    """The checks above are only worth something if hidden imports are seen too."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.jobs import runtime\n"
        "def f():\n    from bot.slack import app\n"
        "from . import alerts\n"
    )
    assert imports_of(probe, "bot.store.probe") >= {
        "bot.jobs.runtime",
        "bot.slack.app",
        "bot.store.alerts",
    }


SERVE = """
import json, sys
from bot import cli
# The real path of `budget-bot serve`: parse, load settings, import what serving needs; it
# stops at the first check of the settings (no Scenario credentials here), after the imports.
code = cli.main(["serve", "--port", "0"])
loaded = sorted(m for m in sys.modules if m == "bot" or m.startswith("bot."))
print(json.dumps({"code": code, "loaded": loaded}))
"""


def test_serve_loads_nothing_of_the_fakes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCENARIO", "SLACK"))}
    done = subprocess.run(
        [sys.executable, "-c", SERVE],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .env of the repository is read
        env={**env, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, done.stderr  # stopped at the credentials check
    loaded = result["loaded"]
    assert "bot.slack.app" in loaded and "bot.jobs.scheduler" in loaded and "bot.web" in loaded
    assert not [m for m in loaded if is_sim(m)], loaded


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_sim(m)))
def test_no_product_module_is_a_fake(module: str) -> None:
    """Nothing the product ships imports a fake at module level (the demo and the CLI load
    them inside the commands that need them)."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {(n.module or "") for n in top if isinstance(n, ast.ImportFrom)}
    names |= {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    if module == "bot.demo":
        return  # the demo is made of the fakes
    assert not [n for n in names if is_sim(n)]
