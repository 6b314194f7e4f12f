"""The benchmarks are not run by the suite (they take minutes), but they must keep importing
what they measure: a moved module breaks them here, not on the day someone measures."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys

import pytest

BENCHMARKS = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.name)
def test_benchmark_imports(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing a benchmark (not running it) finds every name it uses from ems."""
    name = f"benchmark_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
