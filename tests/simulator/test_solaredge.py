"""The SolarEdge-style unit serves the layout of SolarEdge's technical note, and its meters
measure what the site does."""

from __future__ import annotations

import pytest

from simulator import SiteSimulator
from simulator.solaredge import METER_COMMON_ADDRESSES, SOLAREDGE_UNIT


def test_models_sit_where_the_document_puts_them() -> None:
    """Common models of 65 registers (no pad), the inverter at 40069, meter 1's common model at
    40121 and meter 2's at 40295, the end marker at 40469."""
    site = SiteSimulator(layout="solaredge")
    models = site.sunspec_models(SOLAREDGE_UNIT)
    assert models == {
        40002: "1",
        40069: "103",
        40121: "1@grid",
        40188: "203@grid",
        40295: "1@consumption",
        40362: "203@consumption",
    }
    assert tuple(a for a, key in models.items() if key.startswith("1@")) == METER_COMMON_ADDRESSES
    values = site.device_values(SOLAREDGE_UNIT)
    assert values["1.L"] == values["1@grid.L"] == values["1@consumption.L"] == 65
    assert values["203@grid.L"] == 105
    assert (values["end.ID"], values["end.L"]) == (0xFFFF, 0)


def test_the_layout_replaces_the_standard_units() -> None:
    """One grid meter and one PV inverter, as on the standard site."""
    assert SiteSimulator(layout="solaredge").unit_ids == (2, 3, 5)


def test_the_meters_measure_the_grid_and_the_house() -> None:
    site = SiteSimulator(layout="solaredge")
    site.advance(12 * 3600)
    values = site.device_values(SOLAREDGE_UNIT)
    truth = site.truth
    assert values["203@grid.W"] == pytest.approx(truth.grid_power_w, abs=1)
    assert values["203@consumption.W"] == pytest.approx(truth.load_power_w, abs=1)
    assert values["103.W"] == pytest.approx(truth.pv_power_w, abs=1)
    assert values["1@grid.SN"] == "SEM-0001"
    assert values["1@consumption.SN"] == "SEM-0002"
