"""quality_scale.yaml grades ems against every rule of Home Assistant's Integration Quality
Scale, honestly: a known status for each, a reason for each exemption, and claims that the code
backs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

PACKAGE = Path(__file__).parents[2] / "custom_components" / "ems"
RULES: dict[str, Any] = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]

# The rules as hassfest lists them (script/hassfest/quality_scale.py), by tier.
BRONZE = {
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-conditions", "docs-high-level-description", "docs-installation-instructions",
    "docs-removal-instructions", "docs-triggers", "entity-event-setup", "entity-unique-id",
    "has-entity-name", "runtime-data", "test-before-configure", "test-before-setup",
    "unique-config-entry",
}  # fmt: skip
SILVER = {
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
}  # fmt: skip
GOLD = {
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default",
    "entity-translations", "exception-translations", "icon-translations",
    "reconfiguration-flow", "repair-issues", "stale-devices",
}  # fmt: skip
PLATINUM = {"async-dependency", "inject-websession", "strict-typing"}
STATUSES = {"done", "todo", "exempt"}


def _status(rule: str) -> str:
    value = RULES[rule]
    return value if isinstance(value, str) else value["status"]


def test_every_rule_is_graded_once() -> None:
    """No rule is missing, none is invented."""
    assert set(RULES) == BRONZE | SILVER | GOLD | PLATINUM


@pytest.mark.parametrize("rule", sorted(BRONZE | SILVER | GOLD | PLATINUM))
def test_status_is_known_and_exemptions_say_why(rule: str) -> None:
    """A rule is a status, or a mapping with a status and a comment; an exemption needs one."""
    value = RULES[rule]
    if isinstance(value, str):
        assert value in STATUSES - {"exempt"}, rule
        return
    assert set(value) <= {"status", "comment"}, rule
    assert value["status"] in STATUSES, rule
    if value["status"] == "exempt":
        assert str(value.get("comment", "")).strip(), rule


@pytest.mark.parametrize(
    ("rule", "evidence"),
    [
        ("brands", (PACKAGE / "brand" / "icon.png").is_file),
        ("diagnostics", (PACKAGE / "diagnostics.py").is_file),
        ("repair-issues", lambda: "async_create_fix_flow" in _source("repairs.py")),
        ("stale-devices", lambda: "async_remove_config_entry_device" in _source("__init__.py")),
        ("reconfiguration-flow", lambda: "async_step_reconfigure" in _source("config_flow.py")),
        ("parallel-updates", lambda: all(
            "PARALLEL_UPDATES" in _source(f"{platform}.py")
            for platform in ("sensor", "number", "select")
        )),
        ("icon-translations", (PACKAGE / "icons.json").is_file),
        ("runtime-data", lambda: "runtime_data" in _source("__init__.py")),
    ],
)  # fmt: skip
def test_done_claims_have_code_behind_them(rule: str, evidence: Any) -> None:
    """What the file calls done can be found in the package."""
    assert _status(rule) == "done"
    assert evidence(), rule


def _source(name: str) -> str:
    return (PACKAGE / name).read_text(encoding="utf-8")
