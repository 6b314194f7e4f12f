"""The engine must stay importable and testable without Home Assistant.

Every module under `custom_components/ems/engine/`, and the `aggregation.py` façade over it,
imports neither `homeassistant` nor any module of the integration outside the engine: imports
made inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "custom_components" / "ems"
ENGINE = PACKAGE / "engine"
PURE_MODULES = sorted(
    [*(path.relative_to(PACKAGE) for path in ENGINE.rglob("*.py")), Path("aggregation.py")]
)


def _dotted(path: Path) -> list[str]:
    parts = ["custom_components", "ems", *path.with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of everything the module imports, relative imports resolved."""
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    modules: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1]
            modules.add(".".join([*base, *([node.module] if node.module else [])]))
    return modules


def test_every_engine_module_is_checked() -> None:
    """The list is read from the folder, so a new module cannot slip past the rule."""
    assert Path("engine/model.py") in PURE_MODULES
    assert len(PURE_MODULES) > 30


@pytest.mark.parametrize("module", PURE_MODULES, ids=str)
def test_engine_imports_nothing_from_home_assistant(module: Path) -> None:
    """A pure module imports neither `homeassistant` nor the integration's glue."""
    imported = _imported_modules(module)
    assert not {name for name in imported if name.split(".")[0] == "homeassistant"}
    ours = {name for name in imported if name.startswith("custom_components.ems")}
    assert all(name.startswith("custom_components.ems.engine") for name in ours), ours


def _ours(module: str) -> set[str]:
    return {
        name for name in _imported_modules(Path(module)) if name.startswith("custom_components")
    }


def test_model_imports_nothing_above_it() -> None:
    """The data model is the bottom layer: model.py, and the control-recipe data its profiles
    carry (recipes.py), import no other stage."""
    assert _ours("engine/model.py") <= {"custom_components.ems.engine.recipes"}
    assert not _ours("engine/recipes.py")
