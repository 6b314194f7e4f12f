"""The names of SunSpec's points in en.json and icons.json are the generator's, kept current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).parents[2] / "scripts" / "sunspec_strings.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sunspec_strings", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_files_hold_what_the_generator_writes() -> None:
    """A supported model added without running scripts/sunspec_strings.py fails here."""
    for path, text in _generator().rendered().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name}: run {SCRIPT.name}"


def test_every_enumeration_names_its_states() -> None:
    """An enum sensor's options all have a translated name, with acronyms kept."""
    names, icons = _generator().entries()
    assert names["sunspec_103_st"]["state"]["mppt"] == "MPPT"
    assert names["sunspec_802_state"]["state"]["soc_protection"] == "SOC protection"
    assert names["sunspec_160_module_dcv"]["name"] == "Module {module} DC voltage"
    assert set(names) == set(icons)
