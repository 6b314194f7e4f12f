"""The pure stages must stay importable and testable without Home Assistant."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "custom_components" / "ems"
PURE_STAGES = [
    "model.py",
    "profiles/__init__.py",
    "profiles/sunspec.py",
    "pipeline.py",
    "ledger.py",
    "modbus.py",
    "cleaning.py",
    "normalization.py",
    "site.py",
    "control.py",
    "aggregation.py",
    "tariffs.py",
]


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            modules.add(f"<relative>.{node.module}")
    return modules


@pytest.mark.parametrize("stage", PURE_STAGES)
def test_pure_stage_imports_nothing_from_home_assistant(stage: str) -> None:
    """A pure stage imports neither `homeassistant` nor the HA glue modules."""
    imported = _imported_modules(PACKAGE / stage)
    assert not {name for name in imported if name.split(".")[0] == "homeassistant"}
    glue = {"coordinator", "entity", "sensor", "config_flow", "const", "diagnostics"}
    assert not {name for name in imported if name.rsplit(".", 1)[-1] in glue}
