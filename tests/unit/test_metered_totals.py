"""Site energy follows the meters' own counters where they exist, integration elsewhere."""

from __future__ import annotations

from dataclasses import replace
import json

import pytest

from custom_components.ems.engine.model import Device, DeviceRole
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.engine.profiles.sunspec import ModelInstance, build_profile
from custom_components.ems.engine.site.metered import MeteredTotals

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


def test_missing_counter_falls_back_then_the_counter_settles_the_gap() -> None:
    """An unusable counter reading: the integrated step counts meanwhile; when the counter is
    back, its step spans the gap, less what the fallback already added."""
    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 10.0, "EnergyExport": 0.0}}, _integrated(0))
    gap = totals.update([GRID], {"grid": {"EnergyImport": None}}, _integrated(0.4))
    assert gap["grid_import"] == pytest.approx(0.4)
    back = totals.update(
        [GRID], {"grid": {"EnergyImport": 10.9, "EnergyExport": 0.0}}, _integrated(0.6)
    )
    assert back["grid_import"] == pytest.approx(0.9)  # what the meter counted from 10.0
    later = totals.update(
        [GRID], {"grid": {"EnergyImport": 11.4, "EnergyExport": 0.0}}, _integrated(0.7)
    )
    assert later["grid_import"] == pytest.approx(1.4)


def test_fallback_ahead_of_the_counter_never_goes_down() -> None:
    """The fallback counted more than the meter did: the total holds until the meter
    catches up, then follows it again."""
    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 10.0, "EnergyExport": 0.0}}, _integrated(0))
    totals.update([GRID], {"grid": {"EnergyImport": None}}, _integrated(0.5))
    back = totals.update(
        [GRID], {"grid": {"EnergyImport": 10.3, "EnergyExport": 0.0}}, _integrated(0.5)
    )
    assert back["grid_import"] == pytest.approx(0.5)
    caught_up = totals.update(
        [GRID], {"grid": {"EnergyImport": 10.6, "EnergyExport": 0.0}}, _integrated(0.5)
    )
    assert caught_up["grid_import"] == pytest.approx(0.6)


def test_consumption_waits_for_a_silent_grid_meter() -> None:
    """Without the grid meter the balance is unknown: consumption holds, and takes the whole
    gap when the meter's counter answers again."""

    def produced(kwh: float) -> dict[str, float]:
        # No grid power while the meter is silent: only production is integrated.
        return {**_integrated(0), "production": kwh}

    totals = MeteredTotals()
    totals.update([GRID], {"grid": {"EnergyImport": 10.0, "EnergyExport": 5.0}}, produced(0))
    silent = totals.update([GRID], {"grid": {}}, produced(0.3))
    assert silent["consumption"] == pytest.approx(0.0)
    assert totals.waiting == {"grid_import", "grid_export"}
    back = totals.update(
        [GRID], {"grid": {"EnergyImport": 10.4, "EnergyExport": 5.1}}, produced(0.5)
    )
    assert back["grid_import"] == pytest.approx(0.4)
    assert back["consumption"] == pytest.approx(0.4 - 0.1 + 0.5)
    assert totals.waiting == set()


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


def test_a_hybrid_inverters_ac_energy_is_no_production_counter() -> None:
    """A hybrid's lifetime AC energy holds its battery's discharge too: production follows
    the integrated power instead."""
    chain = [ModelInstance(model_id=1, address=40002, length=66),
             ModelInstance(model_id=103, address=40070, length=50)]  # fmt: skip
    profile = build_profile(chain, with_storage=True)
    assert profile.hybrid
    hybrid = Device(id="hybrid", name="Hybrid", unit_id=2, profile=profile,
                    role=DeviceRole.PRODUCTION)  # fmt: skip
    plain = replace(hybrid, id="plain", profile=build_profile(chain))
    assert not plain.profile.hybrid
    totals = MeteredTotals()
    values = {"hybrid": {"EnergyGenerated": 10.0}, "plain": {"EnergyGenerated": 10.0}}
    totals.update([hybrid], values, _integrated(0))
    step = totals.update([hybrid], {"hybrid": {"EnergyGenerated": 15.0}}, _integrated(2.0))
    assert step["production"] == pytest.approx(2.0)
    totals = MeteredTotals()
    totals.update([plain], values, _integrated(0))
    step = totals.update([plain], {"plain": {"EnergyGenerated": 15.0}}, _integrated(2.0))
    assert step["production"] == pytest.approx(5.0)
