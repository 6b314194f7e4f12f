"""Site energy follows the meters' own counters where they exist, integration elsewhere."""

from __future__ import annotations

import json

import pytest

from custom_components.ems.model import Device, DeviceRole
from custom_components.ems.pipeline import MeteredTotals
from custom_components.ems.profiles import builtin_profiles

GRID = Device(
    id="grid",
    name="Grid",
    unit_id=1,
    profile=builtin_profiles()["eastron_sdm630"],
    role=DeviceRole.GRID,
)
SERIES = ("grid_import", "grid_export", "production", "consumption", "battery_charge",
          "battery_discharge")  # fmt: skip


def _integrated(value: float) -> dict[str, float]:
    return dict.fromkeys(SERIES, value)


def test_counters_replace_integrated_grid_energy() -> None:
    """Import and export advance by the meter's counter; consumption by the balance."""
    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 100.0, "EnergyExport": 50.0}}, _integrated(0))
    step = totals.update(
        [GRID], {"grid": {"EnergyImport": 101.5, "EnergyExport": 50.2}}, _integrated(7.0)
    )
    assert step["grid_import"] == pytest.approx(1.5)
    assert step["grid_export"] == pytest.approx(0.2)
    # no production or battery device: those follow the integration (+7 kWh here)
    assert step["production"] == pytest.approx(7.0)
    assert step["consumption"] == pytest.approx(1.5 - 0.2 + 7.0 + 7.0 - 7.0)


def test_missing_counter_falls_back_for_that_cycle_and_never_goes_down() -> None:
    """An unusable counter reading: the integrated step counts instead; no total drops."""
    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 10.0, "EnergyExport": 0.0}}, _integrated(0))
    gap = totals.update([GRID], {"grid": {"EnergyImport": None}}, _integrated(0.4))
    assert gap["grid_import"] == pytest.approx(0.4)
    back = totals.update(
        [GRID], {"grid": {"EnergyImport": 10.9, "EnergyExport": 0.0}}, _integrated(0.6)
    )
    assert back["grid_import"] == pytest.approx(0.6)  # re-anchors, then follows the counter
    later = totals.update(
        [GRID], {"grid": {"EnergyImport": 11.4, "EnergyExport": 0.0}}, _integrated(0.7)
    )
    assert later["grid_import"] == pytest.approx(1.1)


def test_restore_round_trip() -> None:
    """Totals and the last counters survive a restart, so the next step is not lost."""
    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 5.0, "EnergyExport": 1.0}}, _integrated(0))
    again = MeteredTotals.from_dict(json.loads(json.dumps(totals.as_dict())))
    step = again.update(
        [GRID], {"grid": {"EnergyImport": 6.0, "EnergyExport": 1.0}}, _integrated(0)
    )
    assert step["grid_import"] == pytest.approx(1.0)
    assert MeteredTotals.from_dict("garbage").totals == {}
