"""scripts/compat_check.py on small synthetic sources: no network, no Home Assistant."""

from __future__ import annotations

from collections.abc import Callable
import importlib.util
from pathlib import Path
import sys
import textwrap
from types import ModuleType
import zipfile

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "compat_check.py"


def _load() -> ModuleType:
    # scripts/ is not a package; the module registers itself so its dataclasses resolve.
    spec = importlib.util.spec_from_file_location("compat_check", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cc = _load()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a module of a fake `homeassistant` tree under tmp_path/ha."""

    def writer(relative: str, source: str) -> Path:
        path = tmp_path / "ha" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    return writer


def _tree(tmp_path: Path) -> object:
    return cc.SourceTree(tmp_path / "ha")


def test_imports_record_names_and_context() -> None:
    """Plain imports are runtime; a try/except ImportError is optional; TYPE_CHECKING is typing."""
    source = textwrap.dedent("""
        import homeassistant.util.dt as dt_util
        from homeassistant.const import Platform, UnitOfPower as Power
        from .const import DOMAIN
        import voluptuous as vol
        try:
            from homeassistant.config_entries import OptionsFlowWithReload
        except ImportError:
            OptionsFlowWithReload = None
        if TYPE_CHECKING:
            from homeassistant.core import HomeAssistant
        def setup():
            from homeassistant.helpers import selector
    """)
    found = {(i.module, i.name, i.context, i.bound) for i in cc.imports_of(source, "x.py")}
    assert found == {
        ("homeassistant.util.dt", None, "runtime", "dt_util"),
        ("homeassistant.const", "Platform", "runtime", "Platform"),
        ("homeassistant.const", "UnitOfPower", "runtime", "Power"),
        ("homeassistant.config_entries", "OptionsFlowWithReload", "optional",
         "OptionsFlowWithReload"),
        ("homeassistant.core", "HomeAssistant", "typing", "HomeAssistant"),
        ("homeassistant.helpers", "selector", "runtime", "selector"),
    }  # fmt: skip


def test_a_try_that_catches_something_else_is_not_feature_detection() -> None:
    source = (
        "try:\n    from homeassistant.core import X\nexcept (KeyError, ValueError):\n    pass\n"
    )
    assert [i.context for i in cc.imports_of(source)] == ["runtime"]
    tupled = (
        "try:\n    from homeassistant.core import X\nexcept (KeyError, ImportError):\n    pass\n"
    )
    assert [i.context for i in cc.imports_of(tupled)] == ["optional"]


def test_module_names_are_the_module_level_bindings() -> None:
    """Definitions, assignments, imports and __all__, including version switches; not locals."""
    tree = cc.ast.parse(
        textwrap.dedent("""
        import os.path
        from typing import Final as F
        from .x import *
        A: F = 1
        B, (C, *D) = 1, (2, 3)
        type Alias = int
        __all__ = ["Exported"]
        def fn():
            local = 1
        class Klass:
            attribute = 1
        if os.path:
            NEW = 1
        else:
            OLD = 1
        try:
            from json import loads
        except ImportError:
            loads = None
        with open("f") as HANDLE:
            pass
    """)
    )
    assert cc.module_names(tree) == {
        "os", "F", "A", "B", "C", "D", "Alias", "__all__", "Exported", "fn", "Klass", "NEW",
        "OLD", "loads", "HANDLE",
    }  # fmt: skip


def test_defines_follows_submodules_star_imports_and_deprecations(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    write("homeassistant/__init__.py", "")
    write("homeassistant/helpers/__init__.py", "from .typing import *\n")
    write("homeassistant/helpers/typing.py", "ConfigType = dict\n")
    write("homeassistant/helpers/selector.py", "")
    write(
        "homeassistant/const.py",
        """
        _DEPRECATED_POWER_WATT = DeprecatedConstant("W", "UnitOfPower.WATT", "2025.1")
        __getattr__ = partial(check_if_deprecated_constant, module_globals=globals())
    """,
    )
    tree = _tree(tmp_path)
    assert cc.defines(tree, "homeassistant.helpers", "ConfigType") == "ok"
    assert cc.defines(tree, "homeassistant.helpers", "selector") == "submodule"
    assert cc.defines(tree, "homeassistant.const", "POWER_WATT") == "deprecated"
    assert cc.defines(tree, "homeassistant.const", "GONE") == "missing"


def test_check_imports_marks_what_breaks(tmp_path: Path, write: Callable[[str, str], Path]) -> None:
    """A missing runtime import breaks setup; a missing optional one is feature detection."""
    write("homeassistant/__init__.py", "")
    write("homeassistant/core.py", "class HomeAssistant: ...\n")
    imported = cc.imports_of(
        textwrap.dedent("""
        from homeassistant.core import HomeAssistant, callback
        from homeassistant.gone import Thing
        try:
            from homeassistant.core import NewFeature
        except ImportError:
            NewFeature = None
    """)
    )
    findings = {(f.imported.name, f.status, f.breaks)
                for f in cc.check_imports(_tree(tmp_path), imported)}  # fmt: skip
    assert findings == {
        ("HomeAssistant", "ok", False),
        ("callback", "missing", True),
        ("Thing", "missing_module", True),
        ("NewFeature", "missing", False),
    }


def test_attribute_uses_of_module_aliases() -> None:
    """`cv.string` is a name of config_validation too; attributes of other objects are not."""
    source = "x = cv.string\ny = cv.time_period(1)\nz = hass.states\n"
    uses = cc.attribute_uses(source, {"cv": "homeassistant.helpers.config_validation"}, "f.py")
    assert [(u.module, u.name) for u in uses] == [
        ("homeassistant.helpers.config_validation", "string"),
        ("homeassistant.helpers.config_validation", "time_period"),
    ]


def test_newer_syntax_is_parsed_or_reported(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    """Python 3.14's `except A, B:` parses with the parentheses added back; worse is reported."""
    write("homeassistant/__init__.py", "")
    write(
        "homeassistant/newer.py",
        """
        def parse():
            try:
                pass
            except ValueError, TypeError:
                pass
        NAME = 1
    """,
    )
    write("homeassistant/unreadable.py", "NAME = t'template {x}' if x else 1\nmatch ::= 2\n")
    tree = _tree(tmp_path)
    assert cc.defines(tree, "homeassistant.newer", "NAME") == "ok"
    imported = cc.imports_of("from homeassistant.unreadable import NAME\n")
    (finding,) = cc.check_imports(tree, imported)
    assert finding.status == "unparsed"
    assert not finding.breaks
    assert tree.unparsed == {"homeassistant.unreadable"}


def test_typed_dict_keys_through_reexports_and_bases(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    write("homeassistant/__init__.py", "")
    write("homeassistant/models/__init__.py", "from .statistics import StatisticMetaData\n")
    write(
        "homeassistant/models/statistics.py",
        """
        class Base(TypedDict):
            source: str
        class StatisticMetaData(Base):
            has_mean: NotRequired[bool]
            mean_type: StatisticMeanType
            unit_class: str | None
        class Partial(TypedDict, total=False):
            period: str
            offset: Required[int]
    """,
    )
    tree = _tree(tmp_path)
    keys = cc.typed_dict_keys(tree, "homeassistant.models", "StatisticMetaData")
    assert keys.required == {"source", "mean_type", "unit_class"}
    assert keys.optional == {"has_mean"}
    partial = cc.typed_dict_keys(tree, "homeassistant.models.statistics", "Partial")
    assert (partial.required, partial.optional) == ({"offset"}, {"period"})
    assert cc.typed_dict_keys(tree, "homeassistant.models", "Absent") is None


STATISTICS = textwrap.dedent("""
    def statistic_metadata(hass) -> StatisticMetaData:
        fields = {"mean_type": 0, "has_sum": True, "source": "ems"}
        if _UNIT_CLASS_SUPPORTED:
            fields["unit_class"] = "energy"
        return cast(StatisticMetaData, fields)

    def other() -> dict:
        return {"not_metadata": 1}
""")


def test_keys_sent_split_by_feature_detection() -> None:
    sent = cc.keys_sent(STATISTICS, "StatisticMetaData")
    assert sent.always == {"mean_type", "has_sum", "source"}
    assert sent.conditional == {"unit_class"}


@pytest.mark.parametrize(("required", "optional", "problems"), [
    # 2025.4.4: no unit_class, and the feature-detected key is simply not sent.
    ({"mean_type", "has_sum", "source"}, {"has_mean"}, []),
    # 2026.x: unit_class required, and sent behind the feature detection.
    ({"mean_type", "has_sum", "source", "unit_class"}, set(), []),
    # A release that drops a key ems always sends, and one that adds a required key.
    ({"mean_type", "source"}, set(),
     ["sends 'has_sum', which StatisticMetaData no longer declares"]),
    ({"mean_type", "has_sum", "source", "unit_kind"}, set(),
     ["does not send 'unit_kind', which StatisticMetaData requires"]),
])  # fmt: skip
def test_metadata_problems(required: set[str], optional: set[str], problems: list[str]) -> None:
    accepted = cc.TypedDictKeys(frozenset(required), frozenset(optional))
    assert cc.metadata_problems(cc.keys_sent(STATISTICS, "StatisticMetaData"), accepted) == problems


def test_feature_detected_keys_resolve_to_their_class() -> None:
    source = textwrap.dedent("""
        from homeassistant.components.energy import data as energy_data
        from homeassistant.components.recorder.models import StatisticMetaData
        FLAT = "stat_energy_from" in energy_data.GridSourceType.__annotations__
        UNIT = "unit_class" in StatisticMetaData.__annotations__
    """)
    imported = cc.imports_of(source, "f.py")
    detected = cc.detected_keys(source)
    assert detected == [
        ("stat_energy_from", "energy_data.GridSourceType"),
        ("unit_class", "StatisticMetaData"),
    ]
    assert [cc.resolve_owner(imported, "f.py", owner) for _, owner in detected] == [
        ("homeassistant.components.energy.data", "GridSourceType"),
        ("homeassistant.components.recorder.models", "StatisticMetaData"),
    ]


def test_version_and_modbus_pin(tmp_path: Path, write: Callable[[str, str], Path]) -> None:
    write(
        "homeassistant/const.py",
        """
        MAJOR_VERSION: Final = 2026
        MINOR_VERSION: Final = 11
        PATCH_VERSION: Final = "0"
    """,
    )
    write("homeassistant/components/modbus/manifest.json",
          '{"requirements": ["pymodbus==3.13.1"]}')  # fmt: skip
    tree = _tree(tmp_path)
    assert cc.ha_version(tree) == "2026.11.0"
    assert cc.pinned_requirement(tree, "modbus", "pymodbus") == "pymodbus==3.13.1"
    assert cc.pinned_requirement(tree, "sensor", "pymodbus") is None


def _wheel(folder: Path, version: str, files: dict[str, str]) -> Path:
    path = folder / f"homeassistant-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def test_newest_wheel_by_version_and_unpacked_once(tmp_path: Path) -> None:
    """2026.11 is newer than 2026.9 (a name sort says otherwise); only sources are unpacked."""
    for version in ("2026.9.0", "2026.10.3"):
        _wheel(tmp_path, version, {})
    newest = _wheel(tmp_path, "2026.11.0", {
        "homeassistant/const.py": "MAJOR_VERSION = 2026\n",
        "homeassistant/components/modbus/manifest.json": "{}",
        "homeassistant/components/modbus/strings.json": "{}",
        "homeassistant-2026.11.0.dist-info/METADATA": "",
    })  # fmt: skip
    assert cc.newest_wheel(tmp_path) == newest
    root = cc.unpack(newest, tmp_path / "cache")
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == {
        ".complete",
        "homeassistant/const.py",
        "homeassistant/components/modbus/manifest.json",
    }
    (root / "homeassistant" / "const.py").write_text("MAJOR_VERSION = 1\n")
    cc.unpack(newest, tmp_path / "cache")
    assert (root / "homeassistant" / "const.py").read_text() == "MAJOR_VERSION = 1\n"
    assert cc.newest_wheel(tmp_path / "cache") is None


def test_main_exit_codes(
    tmp_path: Path, write: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """0 when every name is found, 1 when one is missing, 2 without a wheel."""
    write("homeassistant/__init__.py", "")
    write(
        "homeassistant/const.py", "MAJOR_VERSION = 2026\nMINOR_VERSION = 11\nPATCH_VERSION = '0'\n"
    )
    write("homeassistant/core.py", "class HomeAssistant: ...\n")
    write("homeassistant/components/recorder/models.py",
          "class StatisticMetaData(TypedDict):\n    source: str\n")  # fmt: skip
    integration = tmp_path / "ems"
    integration.mkdir()
    (integration / "statistics.py").write_text(
        "def meta() -> StatisticMetaData:\n    return {'source': 'ems'}\n"
    )
    (integration / "__init__.py").write_text("from homeassistant.core import HomeAssistant\n")
    args = ["--ha-root", str(tmp_path / "ha"), "--integration", str(integration)]
    assert cc.main(args) == 0
    assert "Home Assistant 2026.11.0" in capsys.readouterr().out

    (integration / "__init__.py").write_text("from homeassistant.core import HomeAssistant, gone\n")
    assert cc.main(args) == 1
    out = capsys.readouterr().out
    assert "MISSING: homeassistant.core.gone at __init__.py:1" in out

    (tmp_path / "wheels").mkdir()
    assert cc.main(["--wheels", str(tmp_path / "wheels")]) == 2
