"""The manifest and hacs.json follow hassfest's and HACS's rules for custom integrations."""

from __future__ import annotations

import json
from pathlib import Path
import struct

from packaging.requirements import Requirement
from packaging.version import Version
import pytest

ROOT = Path(__file__).parents[2]
MANIFEST = json.loads((ROOT / "custom_components" / "ems" / "manifest.json").read_text())
HACS = json.loads((ROOT / "hacs.json").read_text())


def test_manifest_keys_and_order() -> None:
    """domain and name first, then the rest sorted, as hassfest requires."""
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    required = {"codeowners", "config_flow", "documentation", "integration_type", "iot_class",
                "issue_tracker", "requirements", "version"}  # fmt: skip
    assert required <= set(MANIFEST)
    assert MANIFEST["domain"] == "ems"
    assert MANIFEST["config_flow"] is True
    assert MANIFEST["integration_type"] == "hub"
    assert MANIFEST["iot_class"] == "local_polling"
    assert MANIFEST["dependencies"] == ["recorder"]


def test_manifest_version_and_requirements() -> None:
    """A custom integration needs a valid version; requirements are ranges that admit HA's
    newest pins (pymodbus 3.13.1 in HA 2026.11) and the versions tested here."""
    Version(MANIFEST["version"])
    requirements = {Requirement(text).name: Requirement(text) for text in MANIFEST["requirements"]}
    assert requirements["pymodbus"].specifier.contains("3.8.3")
    assert requirements["pymodbus"].specifier.contains("3.13.1")
    assert requirements["pint"].specifier.contains("0.25.2")
    assert requirements["pysunspec2"].specifier.contains("1.3.7")


def test_hacs_json() -> None:
    """HACS reads the name and the minimum Home Assistant version from hacs.json."""
    assert HACS["name"]
    assert Version(HACS["homeassistant"]) == Version("2025.4.4")
    allowed = {
        "name", "homeassistant", "render_readme", "hacs", "country",
        "content_in_root", "zip_release", "filename", "hide_default_branch",
    }  # fmt: skip
    assert set(HACS) <= allowed


@pytest.mark.parametrize(("name", "size"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_icons(name: str, size: int) -> None:
    """Brand icons are square PNGs of the sizes Home Assistant asks for, with an alpha channel
    (a transparent background)."""
    data = (ROOT / "custom_components" / "ems" / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    assert (width, height) == (size, size)
    assert bit_depth == 8
    assert color_type == 6  # truecolour with alpha
