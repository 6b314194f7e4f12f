"""Pure-stage tests import `custom_components.ems.*` without Home Assistant when it is absent.

The package's `__init__` is Home Assistant glue; the pure stages beneath it must not need it.
In the pymodbus-compatibility venv (no Home Assistant), the package is registered bare so its
pure modules import on their own, which also proves that they do not need Home Assistant.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
import types

if importlib.util.find_spec("homeassistant") is None:
    _package = types.ModuleType("custom_components.ems")
    _package.__path__ = [str(Path(__file__).parents[2] / "custom_components" / "ems")]
    sys.modules.setdefault("custom_components.ems", _package)
