"""The site model: OpenEMS's `_sum`, the energy flows, their integration and the load parameters."""

from __future__ import annotations

from datetime import UTC, datetime
import json
import math
from typing import Any

from hypothesis import assume, given, strategies as st
import pytest

from custom_components.ems.engine.model import DeviceRole, DeviceType
from custom_components.ems.engine.site.flows import FLOW_NAMES, EnergyFlows, split_flows
from custom_components.ems.engine.site.integration import (
    ENERGY_SERIES,
    DeviceEnergyAccumulator,
    EnergyIntegrator,
    SiteAccumulator,
    SiteEnergies,
)
from custom_components.ems.engine.site.loads import LoadTracker, utc_month_key
from custom_components.ems.engine.site.powers import (
    ROLE_SIGN,
    SiteInput,
    SitePower,
    power_sign,
    site_power,
)
from simulator import SiteSimulator
from simulator.physics import SiteConfig

_J_PER_KWH = 3.6e6
# A wall-clock quarter hour (epoch seconds, a multiple of 900): 2025-06-04 14:45 UTC.
T0 = 900.0 * 1_943_883


def _meter(role: DeviceRole, watts: float | None, *, invert: bool = False) -> SiteInput:
    return SiteInput(
        role=role, device_type=DeviceType.METER, readings={"ActivePower": watts}, invert=invert
    )


def _inverter(watts: float | None, role: DeviceRole = DeviceRole.PRODUCTION) -> SiteInput:
    return SiteInput(role=role, device_type=DeviceType.INVERTER, readings={"AC_Power": watts})


def _battery(watts: float | None) -> SiteInput:
    return SiteInput(
        role=DeviceRole.BATTERY, device_type=DeviceType.BATTERY, readings={"ActivePower": watts}
    )


def _balanced(grid: float, production: float, battery: float) -> SitePower:
    return SitePower(
        grid_w=grid,
        production_w=production,
        battery_w=battery,
        consumption_w=grid + production + battery,
    )


# --- site sums: sign table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        # grid meter: + import
        (_meter(DeviceRole.GRID, 1500.0), "grid_w", 1500.0),
        (_meter(DeviceRole.GRID, -2500.0), "grid_w", -2500.0),
        # a meter on the PV output reads -PV (power leaves the metered circuit)
        (_meter(DeviceRole.PRODUCTION, -3000.0), "production_w", 3000.0),
        # ... unless it is installed the other way round
        (_meter(DeviceRole.PRODUCTION, 3000.0, invert=True), "production_w", 3000.0),
        # an inverter's AC power is production as it is
        (_inverter(3000.0), "production_w", 3000.0),
        # SunSpec 802.W: + discharge, OpenEMS's battery sign
        (_battery(2000.0), "battery_w", 2000.0),
        (_battery(-1200.0), "battery_w", -1200.0),
        # a meter on a battery inverter's output reads + while the battery charges
        (_meter(DeviceRole.BATTERY, 1200.0), "battery_w", -1200.0),
        # an inverted grid meter (CT clamp the wrong way)
        (_meter(DeviceRole.GRID, -700.0, invert=True), "grid_w", 700.0),
    ],
)
def test_sign_table(item: SiteInput, field: str, expected: float) -> None:
    """Each (device type, role) pair reads into the role's OpenEMS sign."""
    others: list[SiteInput] = [] if item.role is DeviceRole.GRID else [_meter(DeviceRole.GRID, 0)]
    assert getattr(site_power([item, *others]), field) == pytest.approx(expected)


def test_sign_table_is_data() -> None:
    """The table is explicit; unlisted pairs take the reading as it is."""
    assert ROLE_SIGN[(DeviceType.METER, DeviceRole.PRODUCTION)] == -1
    assert ROLE_SIGN[(DeviceType.INVERTER, DeviceRole.PRODUCTION)] == +1
    assert ROLE_SIGN[(DeviceType.BATTERY, DeviceRole.BATTERY)] == +1
    assert ROLE_SIGN[(DeviceType.METER, DeviceRole.GRID)] == +1
    assert power_sign(DeviceType.BATTERY, DeviceRole.PRODUCTION) == +1


def test_site_balance() -> None:
    """consumption = grid + production + battery (OpenEMS signs)."""
    power = site_power(
        [
            _meter(DeviceRole.GRID, 500.0),
            _inverter(2000.0),
            _meter(DeviceRole.PRODUCTION, -1000.0),  # a second array, metered
            _battery(-1000.0),  # charging
        ]
    )
    assert power == SitePower(
        grid_w=500.0, production_w=3000.0, battery_w=-1000.0, consumption_w=2500.0
    )


def test_inverter_standby_draw_is_consumption() -> None:
    """A PV inverter drawing power at night produces 0 and its draw lands in consumption."""
    # grid meter sees house 400 W + inverter standby 2 W; the PV meter reads +2 W (import)
    power = site_power([_meter(DeviceRole.GRID, 402.0), _meter(DeviceRole.PRODUCTION, 2.0)])
    assert power.production_w == 0.0
    assert power.consumption_w == pytest.approx(402.0)
    same = site_power([_meter(DeviceRole.GRID, 402.0), _inverter(-2.0)])
    assert same.production_w == 0.0
    assert same.consumption_w == pytest.approx(402.0)


# --- site sums: None propagation, loads and submeters -------------------------------------------


def test_no_grid_reading_means_no_consumption() -> None:
    """Without a usable grid reading, grid and consumption are unknown; the rest is not."""
    for grid in (None, math.nan, math.inf):
        power = site_power([_meter(DeviceRole.GRID, grid), _inverter(1000.0), _battery(-200.0)])
        assert power.grid_w is None
        assert power.consumption_w is None
        assert power.production_w == 1000.0
        assert power.battery_w == -200.0
        assert split_flows(power) is None


def test_missing_channel_or_device() -> None:
    """A missing channel is unusable; a site without a grid meter has no grid power."""
    wrong_channel = SiteInput(
        role=DeviceRole.PRODUCTION, device_type=DeviceType.INVERTER, readings={"DC_Power": 5.0}
    )
    power = site_power([_meter(DeviceRole.GRID, 100.0), wrong_channel])
    assert power.production_w is None
    assert power.consumption_w is None
    assert site_power([_inverter(100.0)]).grid_w is None


def test_unusable_production_or_battery() -> None:
    """One unusable production device or battery makes its sum and consumption unknown."""
    power = site_power([_meter(DeviceRole.GRID, 100.0), _inverter(500.0), _inverter(None)])
    assert power.production_w is None
    assert power.consumption_w is None
    power = site_power([_meter(DeviceRole.GRID, 100.0), _battery(None)])
    assert power.battery_w is None
    assert power.consumption_w is None


def test_without_battery_or_production() -> None:
    """A site with only a grid meter consumes what it imports."""
    power = site_power([_meter(DeviceRole.GRID, 750.0)])
    assert power == SitePower(grid_w=750.0, production_w=0.0, battery_w=0.0, consumption_w=750.0)


_watts = st.floats(min_value=-20_000, max_value=20_000, allow_nan=False)
_optional_watts = st.one_of(st.none(), st.just(math.nan), _watts)


@given(
    grid=_watts,
    pv=_watts,
    battery=_watts,
    extra=st.lists(
        st.tuples(
            st.sampled_from([DeviceRole.LOAD, DeviceRole.SUBMETER]),
            st.sampled_from(list(DeviceType)),
            _optional_watts,
        ),
        max_size=5,
    ),
)
def test_loads_and_submeters_never_counted(
    grid: float,
    pv: float,
    battery: float,
    extra: list[tuple[DeviceRole, DeviceType, float | None]],
) -> None:
    """Loads and submeters change nothing in the sums, whatever they read."""
    site = [_meter(DeviceRole.GRID, grid), _inverter(pv), _battery(battery)]
    others = [
        SiteInput(
            role=role,
            device_type=device_type,
            readings={"ActivePower": watts, "AC_Power": watts},
        )
        for role, device_type, watts in extra
    ]
    assert site_power([*others, *site, *others]) == site_power(site)


# --- energy flows -----------------------------------------------------------------------------


def _close(left: float, right: float) -> bool:
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)


@given(
    production=st.floats(min_value=0, max_value=50_000),
    consumption=st.floats(min_value=0, max_value=50_000),
    battery=st.floats(min_value=-20_000, max_value=20_000),
)
def test_flow_invariants(production: float, consumption: float, battery: float) -> None:
    """Every flow is >= 0 and the flows add up to each source and sink."""
    grid = consumption - production - battery
    flows = split_flows(_balanced(grid, production, battery))
    assert flows is not None
    values = flows.as_dict()
    assert set(values) == set(FLOW_NAMES)
    assert all(value >= 0.0 for value in values.values())
    assert _close(max(grid, 0.0), flows.grid_to_consumption + flows.grid_to_battery)
    assert _close(max(-grid, 0.0), flows.production_to_grid + flows.battery_to_grid)
    assert _close(
        production,
        flows.production_to_consumption + flows.production_to_grid + flows.production_to_battery,
    )
    assert _close(
        consumption,
        flows.production_to_consumption + flows.grid_to_consumption + flows.battery_to_consumption,
    )
    assert _close(max(-battery, 0.0), flows.production_to_battery + flows.grid_to_battery)
    assert _close(max(battery, 0.0), flows.battery_to_consumption + flows.battery_to_grid)
    # never import and export at once
    assert flows.grid_import_w == 0.0 or flows.grid_export_w == 0.0


@given(
    production=st.floats(min_value=0, max_value=50_000),
    battery=_watts,
    shortfall=st.floats(min_value=1e-3, max_value=5_000),
)
def test_flows_never_negative_even_out_of_balance(
    production: float, battery: float, shortfall: float
) -> None:
    """Meters out of step (consumption < 0) still give non-negative flows."""
    power = _balanced(-production - battery - shortfall, production, battery)
    assume(power.consumption_w is not None and power.consumption_w < 0)
    flows = split_flows(power)
    assert flows is not None
    assert all(value >= 0.0 for value in flows.as_dict().values())
    assert flows.consumption_w == 0.0


def test_flow_priority() -> None:
    """PV serves the house, then the battery, then exports; the battery serves the house first."""
    # 5 kW PV, 1 kW house, battery charging 3 kW: 1 kW exported
    flows = split_flows(_balanced(grid=-1000.0, production=5000.0, battery=-3000.0))
    assert flows == EnergyFlows(
        production_to_consumption=1000.0,
        production_to_grid=1000.0,
        production_to_battery=3000.0,
        grid_to_consumption=0.0,
        grid_to_battery=0.0,
        battery_to_consumption=0.0,
        battery_to_grid=0.0,
    )
    # evening: 500 W PV, 2 kW house, battery 1 kW, grid the rest
    flows = split_flows(_balanced(grid=500.0, production=500.0, battery=1000.0))
    assert flows is not None
    assert (flows.production_to_consumption, flows.battery_to_consumption) == (500.0, 1000.0)
    assert flows.grid_to_consumption == 500.0
    assert flows.self_sufficiency_pct == pytest.approx(75.0)
    assert flows.self_consumption_pct == pytest.approx(100.0)
    # forced discharge into the grid at night, house 400 W
    flows = split_flows(_balanced(grid=-2600.0, production=0.0, battery=3000.0))
    assert flows is not None
    assert (flows.battery_to_consumption, flows.battery_to_grid) == (400.0, 2600.0)
    assert flows.self_consumption_pct is None
    # forced charge from the grid beside the PV
    flows = split_flows(_balanced(grid=3000.0, production=1000.0, battery=-3500.0))
    assert flows is not None
    assert (flows.production_to_consumption, flows.production_to_battery) == (500.0, 500.0)
    assert (flows.grid_to_consumption, flows.grid_to_battery) == (0.0, 3000.0)
    assert flows.self_sufficiency_pct == pytest.approx(100.0)
    assert flows.self_consumption_pct == pytest.approx(100.0)


@given(
    production=st.floats(min_value=0, max_value=50_000),
    consumption=st.floats(min_value=0, max_value=50_000),
    battery=st.floats(min_value=-20_000, max_value=20_000),
)
def test_self_sufficiency_and_self_consumption(
    production: float, consumption: float, battery: float
) -> None:
    """Both are percentages as defined, and None without consumption or production."""
    flows = split_flows(_balanced(consumption - production - battery, production, battery))
    assert flows is not None
    if flows.consumption_w <= 0:
        assert flows.self_sufficiency_pct is None
    else:
        expected = 100 * (flows.consumption_w - flows.grid_to_consumption) / flows.consumption_w
        assert flows.self_sufficiency_pct is not None
        assert flows.self_sufficiency_pct == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= flows.self_sufficiency_pct <= 100.0
    if flows.production_w <= 0:
        assert flows.self_consumption_pct is None
    else:
        expected = 100 * (flows.production_w - flows.production_to_grid) / flows.production_w
        assert flows.self_consumption_pct is not None
        assert flows.self_consumption_pct == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= flows.self_consumption_pct <= 100.0


# --- the energy integrator --------------------------------------------------------------------


def test_trapezoid_is_exact() -> None:
    """A ramp up, a plateau and a ramp down: 500 + 2000 + 500 J."""
    integrator = EnergyIntegrator(max_gap_s=60)
    for timestamp, watts in ((0, 0.0), (10, 100.0), (30, 100.0), (40, 0.0)):
        result = integrator.update(watts, timestamp)
    assert result.total_kwh == pytest.approx(3000 / _J_PER_KWH)
    assert not result.estimated
    assert integrator.estimated_kwh == 0.0


@given(
    samples=st.lists(
        st.tuples(st.floats(min_value=0.1, max_value=60), st.floats(min_value=0, max_value=10_000)),
        min_size=1,
        max_size=50,
    )
)
def test_trapezoid_matches_reference(samples: list[tuple[float, float]]) -> None:
    """The total is the trapezoid sum of the samples."""
    integrator = EnergyIntegrator(max_gap_s=60)
    timestamp, previous = 1000.0, 0.0
    integrator.update(previous, timestamp)
    expected_j = 0.0
    for step, watts in samples:
        timestamp += step
        expected_j += (previous + watts) / 2 * step
        integrator.update(watts, timestamp)
        previous = watts
    assert integrator.total_kwh == pytest.approx(expected_j / _J_PER_KWH, rel=1e-9, abs=1e-12)


def test_gap_longer_than_the_limit_is_estimated() -> None:
    """A gap is bridged by the trapezoid of its ends and flagged; it can be spread."""
    integrator = EnergyIntegrator(max_gap_s=60)
    integrator.update(1000.0, 0)
    integrator.update(1000.0, 30)
    result = integrator.update(2000.0, 130)
    assert result.estimated
    assert result.delta_kwh == pytest.approx(1500 * 100 / _J_PER_KWH)
    assert result.since == 30
    assert integrator.estimated_kwh == pytest.approx(result.delta_kwh)
    assert result.total_kwh == pytest.approx((30_000 + 150_000) / _J_PER_KWH)
    # and the next regular sample is not estimated
    assert not integrator.update(2000.0, 140).estimated


def test_unavailable_samples_are_not_integrated() -> None:
    """None means unavailable; the next good sample spans the gap under the gap rule."""
    integrator = EnergyIntegrator(max_gap_s=60)
    integrator.update(1000.0, 0)
    assert integrator.update(None, 10).total_kwh == 0.0
    short = integrator.update(1000.0, 20)
    assert not short.estimated
    assert short.total_kwh == pytest.approx(20_000 / _J_PER_KWH)
    for timestamp in range(30, 100, 10):
        integrator.update(None, timestamp)
    long = integrator.update(1000.0, 100)
    assert long.estimated
    assert long.since == 20
    assert long.total_kwh == pytest.approx(100_000 / _J_PER_KWH)


def test_negative_power_and_clock_going_back() -> None:
    """Samples below 0 count as 0; a clock set back re-anchors without integrating."""
    integrator = EnergyIntegrator()
    integrator.update(-500.0, 0)
    assert integrator.update(-500.0, 10).total_kwh == 0.0
    integrator.update(360.0, 20)
    total = integrator.total_kwh
    assert total == pytest.approx(1800 / _J_PER_KWH)
    assert integrator.update(360.0, 5).total_kwh == total
    assert integrator.update(360.0, 15).total_kwh == pytest.approx(total + 3600 / _J_PER_KWH)


def test_restart_round_trip() -> None:
    """The state survives JSON; a short restart continues, a long one is an estimated gap."""
    reference = EnergyIntegrator(max_gap_s=120)
    integrator = EnergyIntegrator(max_gap_s=120)
    for timestamp in range(0, 600, 10):
        reference.update(1000.0 + timestamp, timestamp)
        integrator.update(1000.0 + timestamp, timestamp)
    restored = EnergyIntegrator.from_dict(json.loads(json.dumps(integrator.as_dict())), 120)
    assert restored.total_kwh == integrator.total_kwh
    assert restored.last_timestamp == 590
    result = restored.update(1700.0, 650)
    reference.update(1700.0, 650)
    assert not result.estimated
    assert result.total_kwh == pytest.approx(reference.total_kwh)
    # a restart that took an hour
    restored = EnergyIntegrator.from_dict(json.loads(json.dumps(restored.as_dict())), 120)
    result = restored.update(1700.0, 4250)
    assert result.estimated
    assert result.delta_kwh == pytest.approx(1700 * 3600 / _J_PER_KWH)


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "state",
        [],
        42,
        {"total_kwh": "12.5"},
        {"total_kwh": math.nan},
        {"total_kwh": math.inf},
        {"total_kwh": -3.0},
        {"total_kwh": True},
        {"last_timestamp": 100.0},  # an anchor without its power
        {"last_timestamp": "yesterday", "last_w": 100.0},
    ],
)
def test_garbage_state_starts_afresh(garbage: Any) -> None:
    """Malformed state never raises: a fresh total and no anchor."""
    integrator = EnergyIntegrator.from_dict(garbage)
    assert integrator.total_kwh == 0.0
    assert integrator.last_timestamp is None
    assert integrator.update(1000.0, 200).total_kwh == 0.0


def test_partly_garbage_state_keeps_what_is_valid() -> None:
    """A valid total survives a broken anchor; estimated energy never exceeds the total."""
    integrator = EnergyIntegrator.from_dict(
        {"total_kwh": 5.0, "estimated_kwh": 9.0, "last_timestamp": None, "last_w": 3.0}
    )
    assert integrator.total_kwh == 5.0
    assert integrator.estimated_kwh == 5.0
    assert integrator.last_timestamp is None


# --- the site accumulator ---------------------------------------------------------------------


def _accumulate(accumulator: SiteAccumulator, power: SitePower, timestamp: float) -> Any:
    return accumulator.update(power, split_flows(power), timestamp)


def test_site_accumulator_totals_and_round_trip() -> None:
    """Counters integrate each series; the flows add up to the site series; JSON round trip."""
    accumulator = SiteAccumulator(max_gap_s=60)
    power = _balanced(grid=-1000.0, production=5000.0, battery=-3000.0)
    for timestamp in range(0, 3601, 10):
        energies = _accumulate(accumulator, power, timestamp)
    assert energies.production_kwh == pytest.approx(5.0)
    assert energies.grid_export_kwh == pytest.approx(1.0)
    assert energies.grid_import_kwh == 0.0
    assert energies.battery_charge_kwh == pytest.approx(3.0)
    assert energies.consumption_kwh == pytest.approx(1.0)
    assert energies.production_to_battery_kwh == pytest.approx(3.0)
    assert set(energies.totals()) == set(ENERGY_SERIES)
    assert energies.estimated == frozenset()

    restored = SiteAccumulator.from_dict(json.loads(json.dumps(accumulator.as_dict())), 60)
    assert restored.as_dict() == accumulator.as_dict()
    after = _accumulate(restored, power, 7200)  # an hour's outage
    assert after.estimated == frozenset(ENERGY_SERIES)  # zero is an estimate across a gap too
    assert after.production_kwh == pytest.approx(10.0)


def test_site_accumulator_skips_unusable_series() -> None:
    """Without a grid reading, grid, consumption and flows stand still; production goes on."""
    accumulator = SiteAccumulator(max_gap_s=60)
    _accumulate(accumulator, _balanced(500.0, 1000.0, 0.0), 0)
    unknown_grid = SitePower(grid_w=None, production_w=1000.0, battery_w=0.0, consumption_w=None)
    energies = _accumulate(accumulator, unknown_grid, 36)
    assert energies.production_kwh == pytest.approx(0.01)
    assert energies.grid_import_kwh == 0.0
    assert energies.consumption_kwh == 0.0
    assert energies.production_to_consumption_kwh == 0.0


@pytest.mark.parametrize("garbage", [None, "x", {"series": 5}, {"series": {"production": "x"}}])
def test_site_accumulator_garbage_state(garbage: Any) -> None:
    """Malformed state starts every counter at 0."""
    assert SiteAccumulator.from_dict(garbage).as_dict() == SiteAccumulator().as_dict()


def test_device_energy_for_devices_without_counters() -> None:
    """A battery without counters gets charged/discharged energy; an inverter its production."""
    accumulator = DeviceEnergyAccumulator(max_gap_s=60)
    for timestamp in range(0, 3601, 10):
        accumulator.update(_battery(-2000.0 if timestamp < 1800 else 1000.0), timestamp)
    restored = DeviceEnergyAccumulator.from_dict(json.loads(json.dumps(accumulator.as_dict())))
    results = restored.update(_battery(1000.0), 3610)
    # the change of sign at 1800 s is a 10 s ramp through 0: 2000 W x 5 s and 1000 W x 5 s
    assert results["EnergyCharged"].total_kwh == pytest.approx((2000 * 1795) / _J_PER_KWH)
    assert results["EnergyDischarged"].total_kwh == pytest.approx((1000 * 1815) / _J_PER_KWH)
    inverter = DeviceEnergyAccumulator()
    inverter.update(_inverter(3600.0), 0)
    assert inverter.update(_inverter(3600.0), 10)["EnergyGenerated"].total_kwh == pytest.approx(
        0.01
    )
    assert DeviceEnergyAccumulator.from_dict([1, 2]).as_dict()["series"] == {}


# --- load parameters --------------------------------------------------------------------------


def test_load_runtime() -> None:
    """Runtime counts the time above the threshold; a switch counts at the middle of its span."""
    tracker = LoadTracker(on_threshold_w=100.0)
    state = tracker.update(0.0, T0)
    assert not state.status_on
    state = tracker.update(1000.0, T0 + 10)
    assert state.status_on
    assert state.runtime_h == pytest.approx(5 / 3600)
    for timestamp in range(20, 3611, 10):
        state = tracker.update(1000.0, T0 + timestamp)
    assert state.runtime_h == pytest.approx((5 + 3600) / 3600)
    state = tracker.update(100.0, T0 + 3620)  # at the threshold is off
    assert not state.status_on
    assert state.runtime_h == pytest.approx((5 + 3600 + 5) / 3600)
    # a 10 s span split by a quarter-hour boundary still counts 5 s
    tracker.update(1000.0, T0 + 3595)
    assert tracker.update(0.0, T0 + 3605).runtime_h == pytest.approx((5 + 3600 + 10) / 3600)


def test_quarter_hour_demand_and_peak() -> None:
    """Demand is the average of the last complete wall-clock quarter hour; peak the largest."""
    tracker = LoadTracker()
    state = tracker.update(2000.0, T0)
    for timestamp in range(10, 900, 10):
        state = tracker.update(2000.0, T0 + timestamp)
    assert state.demand_kw is None  # the first quarter hour is not complete yet
    state = tracker.update(2000.0, T0 + 900)
    assert state.demand_kw == pytest.approx(2.0)
    assert state.peak_demand_kw == pytest.approx(2.0)
    # half an hour at 1 kW with a 6 kW spike at the middle of the second block
    for timestamp in range(910, 2701, 10):
        watts = 6000.0 if timestamp == 1800 + 450 else 1000.0
        state = tracker.update(watts, T0 + timestamp)
        if timestamp == 1800:  # the block began with the 10 s ramp from 2 kW down to 1 kW
            assert state.demand_kw == pytest.approx((1000 * 900 + 5000) / 900 / 1000)
    # the spike adds a 5 kW triangle of 20 s: 50 kJ over 900 s
    assert state.demand_kw == pytest.approx(1.0 + 50 / 900)
    assert state.peak_demand_kw == pytest.approx(2.0)


def test_demand_of_a_block_split_by_samples() -> None:
    """Samples that straddle a boundary are split at it by linear interpolation."""
    tracker = LoadTracker(max_gap_s=600)
    tracker.update(1000.0, T0 - 100)
    tracker.update(1000.0, T0 + 400)  # covers T0..T0+400 at 1 kW
    state = tracker.update(3000.0, T0 + 1000)  # ramps 1 -> 3 kW; at T0+900 2.667 kW
    at_boundary = 1000 + 2000 * 500 / 600
    expected_j = 1000 * 400 + (1000 + at_boundary) / 2 * 500
    assert state.demand_kw == pytest.approx(expected_j / 900 / 1000)


def test_partial_or_interrupted_blocks_have_no_demand() -> None:
    """A block with too little data gives no demand rather than a guess."""
    tracker = LoadTracker(max_gap_s=60)
    for timestamp in range(450, 901, 10):  # started halfway through the block
        state = tracker.update(1000.0, T0 + timestamp)
    assert state.demand_kw is None
    for timestamp in range(910, 1801, 10):
        state = tracker.update(1000.0, T0 + timestamp)
    assert state.demand_kw == pytest.approx(1.0)
    # an outage of five minutes (longer than max_gap_s) inside the next block
    for timestamp in [*range(1810, 2000, 10), *range(2300, 2701, 10)]:
        state = tracker.update(1000.0, T0 + timestamp)
    assert state.demand_kw is None
    runtime = state.runtime_h
    assert runtime == pytest.approx((2700 - 450 - 310) / 3600)
    # unavailable readings: status unknown (off), no runtime while they last
    state = tracker.update(None, T0 + 2710)
    assert not state.status_on
    assert state.runtime_h == runtime


def test_monthly_peak_resets() -> None:
    """A new month starts its peak afresh; the last block of the old month counts to it."""
    start = datetime(2026, 1, 31, 23, 30, tzinfo=UTC).timestamp()
    tracker = LoadTracker()
    for offset in range(0, 1800, 10):
        state = tracker.update(3000.0, start + offset)
    assert state.peak_demand_kw == pytest.approx(3.0)
    state = tracker.update(500.0, start + 1800)  # 2026-02-01 00:00
    assert state.demand_kw == pytest.approx((3000 * 890 + 1750 * 10) / 900 / 1000)
    assert state.peak_demand_kw is None
    for offset in range(1810, 2701, 10):
        state = tracker.update(500.0, start + offset)
    assert state.demand_kw == pytest.approx(0.5)
    assert state.peak_demand_kw == pytest.approx(0.5)
    assert utc_month_key(start + 1800) == "2026-02"


def test_month_key_comes_from_the_caller() -> None:
    """Local months: the caller's key decides when the peak resets."""
    tracker = LoadTracker()
    for offset in range(0, 1801, 10):
        state = tracker.update(4000.0, T0 + offset, "2025-06")
    assert state.peak_demand_kw == pytest.approx(4.0)
    state = tracker.update(1000.0, T0 + 1810, "2025-07")
    assert state.peak_demand_kw is None


def test_load_tracker_round_trip_and_garbage() -> None:
    """The state survives JSON mid-block; garbage starts afresh."""
    reference = LoadTracker()
    tracker = LoadTracker()
    for offset in range(0, 1300, 10):
        reference.update(1500.0, T0 + offset)
        tracker.update(1500.0, T0 + offset)
    restored = LoadTracker.from_dict(json.loads(json.dumps(tracker.as_dict())))
    assert restored.state == tracker.state
    for offset in range(1300, 1801, 10):
        expected = reference.update(1500.0, T0 + offset)
        state = restored.update(1500.0, T0 + offset)
    assert state == expected
    assert state.demand_kw == pytest.approx(1.5)
    for garbage in (None, "x", {"runtime_s": "1", "block_start": 17.0, "peak_kw": math.nan}):
        fresh = LoadTracker.from_dict(garbage)
        assert fresh.state == LoadTracker().state


# --- acceptance: a simulated day against the ground truth -------------------------------------

_DAY_S = 86_400
# A poll period that does not divide the heat pump's 30-minute cycle: with a divisor (10 s,
# say) every switch-on falls exactly on a sample, and the trapezoid then books half a step of
# heat pump per cycle that the simulator's 1 s integration does not (+0.3 % grid import).
_STEP_S = 17
_STEPS = -(-_DAY_S // _STEP_S)  # a day, rounded up to whole steps


_FLOWS_OF_SERIES = {
    "production": ("production_to_consumption", "production_to_grid", "production_to_battery"),
    "consumption": ("production_to_consumption", "grid_to_consumption", "battery_to_consumption"),
    "grid_import": ("grid_to_consumption", "grid_to_battery"),
    "grid_export": ("production_to_grid", "battery_to_grid"),
    "battery_charge": ("production_to_battery", "grid_to_battery"),
    "battery_discharge": ("battery_to_consumption", "battery_to_grid"),
}


def _reading(site: SiteSimulator, unit: int, key: str) -> float:
    value = site.device_values(unit)[key]
    assert isinstance(value, float | int)
    return float(value)


def _site_inputs(site: SiteSimulator) -> tuple[list[SiteInput], list[SiteInput]]:
    """Units 1-5 as the coordinator would hand them over, with the profiles' channel keys:
    once with the inverter as production and the PV meter as a submeter, once the other way
    round."""
    grid = _meter(DeviceRole.GRID, _reading(site, 1, "ActivePower"))  # Eastron SDM630
    inverter_w = _reading(site, 2, "103.W")  # SunSpec inverter: 103.W -> AC_Power
    battery = _battery(_reading(site, 3, "802.W"))  # SunSpec battery: 802.W -> ActivePower
    pv_meter_w = _reading(site, 4, "203.W")  # SunSpec meter on the PV output: 203.W
    heat_pump = _meter(DeviceRole.LOAD, _reading(site, 5, "ActivePower"))  # Eastron SDM120
    by_inverter = [
        grid,
        _inverter(inverter_w, DeviceRole.PRODUCTION),
        battery,
        _meter(DeviceRole.SUBMETER, pv_meter_w),
        heat_pump,
    ]
    by_pv_meter = [
        grid,
        _inverter(inverter_w, DeviceRole.SUBMETER),
        battery,
        _meter(DeviceRole.PRODUCTION, pv_meter_w),
        heat_pump,
    ]
    return by_inverter, by_pv_meter


def test_site_sums_match_the_ground_truth_over_a_day() -> None:
    """Site sums equal the simulator's ground-truth balance within 1 % over a simulated day."""
    config = SiteConfig(
        start=datetime(2026, 3, 20, tzinfo=UTC), battery_capacity_kwh=5.0, initial_soc=30.0
    )
    site = SiteSimulator(config)  # never started: no sockets, time moves through advance()
    by_inverter = SiteAccumulator(max_gap_s=60)
    by_pv_meter = SiteAccumulator(max_gap_s=60)
    latest: dict[SiteAccumulator, SiteEnergies] = {}
    battery_energy = DeviceEnergyAccumulator(max_gap_s=60)  # model 802 has no counters
    heat_pump = LoadTracker(on_threshold_w=10.0, max_gap_s=60)
    start = site.truth
    for step in range(_STEPS + 1):
        if step:
            site.advance(_STEP_S)
        timestamp = config.start.timestamp() + step * _STEP_S
        inputs_by_inverter, inputs = _site_inputs(site)
        for accumulator, site_inputs in ((by_inverter, inputs_by_inverter), (by_pv_meter, inputs)):
            power = site_power(site_inputs)
            latest[accumulator] = accumulator.update(power, split_flows(power), timestamp)
        battery = battery_energy.update(inputs[2], timestamp)
        load = heat_pump.update(inputs[4].power_w, timestamp)
    end = site.truth
    truth = {
        "grid_import": end.grid_import_kwh - start.grid_import_kwh,
        "grid_export": end.grid_export_kwh - start.grid_export_kwh,
        "production": end.pv_energy_kwh - start.pv_energy_kwh,
        "battery_charge": end.battery_charged_kwh - start.battery_charged_kwh,
        "battery_discharge": end.battery_discharged_kwh - start.battery_discharged_kwh,
        "consumption": end.load_energy_kwh - start.load_energy_kwh,
    }
    assert min(truth.values()) > 4.0  # every series matters on this day
    for accumulator in (by_inverter, by_pv_meter):
        totals = latest[accumulator].totals()
        errors = {name: totals[name] / kwh - 1 for name, kwh in truth.items()}
        assert all(abs(error) < 0.01 for error in errors.values()), errors
        # the flows add up to the site series
        for series, flows in _FLOWS_OF_SERIES.items():
            total = sum(totals[flow] for flow in flows)
            assert totals[series] == pytest.approx(total, rel=1e-6)
    # the PV meter's -W gives the production the inverter reports
    assert latest[by_pv_meter].production_kwh == pytest.approx(
        latest[by_inverter].production_kwh, rel=1e-4
    )
    assert battery["EnergyCharged"].total_kwh == pytest.approx(truth["battery_charge"], rel=0.01)
    assert battery["EnergyDischarged"].total_kwh == pytest.approx(
        truth["battery_discharge"], rel=0.01
    )
    heat_pump_kwh = end.heat_pump_energy_kwh - start.heat_pump_energy_kwh
    assert load.runtime_h * config.heat_pump_power_w / 1000 == pytest.approx(
        heat_pump_kwh, rel=0.01
    )
    assert load.peak_demand_kw is not None
    assert load.peak_demand_kw <= config.heat_pump_power_w / 1000 + 1e-9


def test_a_hybrid_inverter_produces_its_output_less_its_battery() -> None:
    """A hybrid's AC output carries its battery: 2 kW out while its battery charges at 1 kW
    is 3 kW of PV; without the battery's reading the production is unknown."""
    hybrid = SiteInput(
        role=DeviceRole.PRODUCTION,
        device_type=DeviceType.INVERTER,
        readings={"AC_Power": 2000.0},
        battery_behind_w=-1000.0,
    )
    power = site_power([_meter(DeviceRole.GRID, 500.0), hybrid, _battery(-1000.0)])
    assert power == SitePower(
        grid_w=500.0, production_w=3000.0, battery_w=-1000.0, consumption_w=2500.0
    )
    unknown = SiteInput(
        role=DeviceRole.PRODUCTION,
        device_type=DeviceType.INVERTER,
        readings={"AC_Power": 2000.0},
        battery_behind_w=None,
    )
    assert unknown.power_w is None
