"""Print the Python requirements of the integrations a Home Assistant install sets up for the demo.

`scripts/develop` runs `hass --skip-pip`, so nothing is installed at run time: every package
that the demo's integrations need must already be in the venv. They are read from the installed
release itself: the integrations bootstrap always sets up, the ones the demo's
configuration.yaml names (scripts/demo/configuration.yaml), ems's own, and everything those
depend on, through their manifests.

Usage: python scripts/hass_requirements.py   (with the venv's interpreter)
"""

from __future__ import annotations

from collections.abc import Iterable
import json
from pathlib import Path
import re

from homeassistant import bootstrap
import homeassistant.components

COMPONENTS = Path(homeassistant.components.__path__[0])
ROOT = Path(__file__).parent.parent
EMS_MANIFEST = ROOT / "custom_components" / "ems" / "manifest.json"
DEMO_CONFIGURATION = ROOT / "scripts" / "demo" / "configuration.yaml"


def demo_domains() -> list[str]:
    """The integrations the demo's configuration.yaml sets up: its top-level keys."""
    return re.findall(r"^([a-z_]+):", DEMO_CONFIGURATION.read_text(), flags=re.MULTILINE)


def _manifest(domain: str) -> dict[str, object] | None:
    path = COMPONENTS / domain / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _names(manifest: dict[str, object], key: str) -> list[str]:
    value = manifest.get(key, [])
    return [str(item) for item in value] if isinstance(value, list) else []


def requirements(domains: Iterable[str]) -> list[str]:
    """The requirements of these integrations and of all they depend on."""
    ems = json.loads(EMS_MANIFEST.read_text())
    pending = [*domains, *_names(ems, "dependencies"), *_names(ems, "after_dependencies")]
    pending += [
        *bootstrap.CORE_INTEGRATIONS,
        *bootstrap.DEFAULT_INTEGRATIONS,
        *bootstrap.FRONTEND_INTEGRATIONS,
        *bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS,
    ]
    seen: set[str] = set()
    found: set[str] = set(_names(ems, "requirements"))
    while pending:
        domain = pending.pop()
        if domain in seen or (manifest := _manifest(domain)) is None:
            continue
        seen.add(domain)
        found.update(_names(manifest, "requirements"))
        pending += _names(manifest, "dependencies") + _names(manifest, "after_dependencies")
    return sorted(found)


if __name__ == "__main__":
    print("\n".join(requirements(demo_domains())))
