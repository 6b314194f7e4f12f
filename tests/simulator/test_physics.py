"""Physics of the simulated site: balance, energy integration, determinism, battery limits."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import UTC, datetime
from itertools import pairwise
import math

from hypothesis import given, settings, strategies as st
import pytest

from simulator import GroundTruth, SiteConfig, StorageControls
from simulator.physics import (
    BatteryMode,
    SiteModel,
    grid_frequency_hz,
    grid_phase_readings,
    heat_pump_reading,
    line_to_line_voltages,
    neutral_current_a,
    solar_elevation_deg,
)

# A small battery that starts nearly empty: within one day it empties (grid import),
# fills up (grid export) and empties again, so every flow and both SoC bounds are exercised.
SMALL_BATTERY_DAY = SiteConfig(
    battery_capacity_kwh=3.0, initial_soc=5.0, start=datetime(2026, 6, 21, tzinfo=UTC)
)
COUNTERS_AND_RATES = {
    "grid_import_kwh": lambda t: max(t.grid_power_w, 0.0),
    "grid_export_kwh": lambda t: max(-t.grid_power_w, 0.0),
    "pv_energy_kwh": lambda t: t.pv_power_w,
    "load_energy_kwh": lambda t: t.load_power_w,
    "heat_pump_energy_kwh": lambda t: t.heat_pump_power_w,
    "battery_charged_kwh": lambda t: max(-t.battery_power_w, 0.0),
    "battery_discharged_kwh": lambda t: max(t.battery_power_w, 0.0),
}


@pytest.fixture(scope="module")
def day() -> list[GroundTruth]:
    """Ground truth every simulated second over one day."""
    model = SiteModel(SMALL_BATTERY_DAY)
    trace = [model.truth()]
    for _ in range(86_400):
        model.advance(1.0)
        trace.append(model.truth())
    return trace


def test_grid_closes_the_balance_at_every_step(day: list[GroundTruth]) -> None:
    for truth in day:
        assert truth.grid_power_w == pytest.approx(
            truth.load_power_w - truth.pv_power_w - truth.battery_power_w, abs=1e-9
        )
        assert truth.pv_power_w >= 0.0
        assert 0.0 <= truth.heat_pump_power_w <= truth.load_power_w


def test_counters_are_the_integral_of_the_powers(day: list[GroundTruth]) -> None:
    for counter, rate in COUNTERS_AND_RATES.items():
        integral_wh = sum((rate(a) + rate(b)) / 2 / 3600 for a, b in pairwise(day))
        assert getattr(day[-1], counter) * 1000 == pytest.approx(integral_wh, rel=1e-3), counter


def test_counters_only_grow_and_balance(day: list[GroundTruth]) -> None:
    for counter in COUNTERS_AND_RATES:
        values = [getattr(truth, counter) for truth in day]
        assert all(a <= b for a, b in pairwise(values)), counter
    end = day[-1]
    assert end.grid_import_kwh - end.grid_export_kwh == pytest.approx(
        end.load_energy_kwh
        - end.pv_energy_kwh
        - (end.battery_discharged_kwh - end.battery_charged_kwh),
        abs=1e-9,
    )


def test_the_day_exercises_every_flow(day: list[GroundTruth]) -> None:
    end = day[-1]
    for counter in COUNTERS_AND_RATES:
        assert getattr(end, counter) > 0.1, counter
    peak_pv = max(truth.pv_power_w for truth in day)
    assert 5000 < peak_pv < SMALL_BATTERY_DAY.pv_kwp * 1000
    assert day[0].pv_power_w == 0.0


def test_soc_stays_within_bounds_and_reaches_both(day: list[GroundTruth]) -> None:
    socs = [truth.battery_soc_pct for truth in day]
    assert min(socs) >= 0.0
    assert max(socs) <= 100.0
    assert min(socs) == pytest.approx(0.0, abs=1e-6)
    assert max(socs) == pytest.approx(100.0, abs=1e-6)
    capacity_kwh = SMALL_BATTERY_DAY.battery_capacity_kwh
    end = day[-1]
    assert socs[-1] == pytest.approx(
        SMALL_BATTERY_DAY.initial_soc
        + (end.battery_charged_kwh - end.battery_discharged_kwh) / capacity_kwh * 100
    )


def test_empty_battery_imports_and_full_battery_exports(day: list[GroundTruth]) -> None:
    empty = [t for t in day if t.battery_soc_pct < 1e-9 and t.load_power_w > t.pv_power_w + 1]
    full = [t for t in day if t.battery_soc_pct > 100 - 1e-9 and t.pv_power_w > t.load_power_w + 1]
    assert empty
    assert full
    # Near a bound the power tapers towards zero over the last second of energy.
    assert all(t.grid_power_w > 0 and t.battery_power_w < 0.5 for t in empty)
    assert all(t.grid_power_w < 0 and t.battery_power_w > -0.5 for t in full)


def test_auto_mode_keeps_the_grid_at_zero_while_it_can(day: list[GroundTruth]) -> None:
    middle = [t for t in day if 10 < t.battery_soc_pct < 90]
    assert middle
    assert all(abs(t.grid_power_w) < 1e-6 for t in middle)


def run(config: SiteConfig, steps: list[float]) -> list[GroundTruth]:
    model = SiteModel(config)
    trace = []
    for seconds in steps:
        model.advance(seconds)
        trace.append(model.truth())
    return trace


def test_same_seed_and_steps_give_the_same_site() -> None:
    steps = [0.5, 1.0, 7.3, 60.0, 600.0] * 3
    assert run(SiteConfig(seed=7), steps) == run(SiteConfig(seed=7), steps)
    assert run(SiteConfig(seed=7), steps) != run(SiteConfig(seed=8), steps)


def test_how_time_is_split_does_not_change_the_powers() -> None:
    coarse = SiteModel(SiteConfig())
    fine = SiteModel(SiteConfig())
    coarse.advance(1800.0)
    for _ in range(3600):
        fine.advance(0.5)
    a, b = coarse.truth(), fine.truth()
    assert a.time == b.time
    assert a.load_power_w == b.load_power_w
    assert a.heat_pump_power_w == b.heat_pump_power_w
    assert a.load_energy_kwh == pytest.approx(b.load_energy_kwh, rel=1e-6)


@pytest.mark.parametrize(
    ("mode", "power_w", "expected_w"),
    [("charge", 2000.0, -2000.0), ("discharge", 1500.0, 1500.0), ("hold", 3000.0, 0.0)],
)
def test_battery_follows_commands(mode: str, power_w: float, expected_w: float) -> None:
    model = SiteModel(SiteConfig())
    model.set_battery_command(mode, power_w)
    assert model.truth().battery_power_w == expected_w  # at once, not only after a step
    model.advance(60.0)
    truth = model.truth()
    assert truth.battery_power_w == expected_w
    assert truth.grid_power_w == pytest.approx(truth.load_power_w - truth.pv_power_w - expected_w)
    assert model.battery_command.mode == BatteryMode(mode)


def test_battery_commands_are_limited_by_the_inverter() -> None:
    model = SiteModel(SiteConfig(battery_max_charge_w=3000.0))
    model.set_battery_command("charge", 9000.0)
    assert model.truth().battery_power_w == -3000.0


@pytest.mark.parametrize(("mode", "power_w"), [("boost", 100.0), ("charge", -5.0)])
def test_invalid_battery_commands_are_rejected(mode: str, power_w: float) -> None:
    with pytest.raises(ValueError, match=r"."):
        SiteModel(SiteConfig()).set_battery_command(mode, power_w)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.01, max_value=300.0),
            st.sampled_from(list(BatteryMode)),
            st.floats(min_value=0.0, max_value=8000.0),
        ),
        min_size=1,
        max_size=8,
    ),
    st.floats(min_value=0.0, max_value=100.0),
)
def test_any_command_sequence_keeps_balance_and_bounds(
    commands: list[tuple[float, BatteryMode, float]], initial_soc: float
) -> None:
    model = SiteModel(replace(SMALL_BATTERY_DAY, initial_soc=initial_soc))
    for seconds, mode, power_w in commands:
        model.set_battery_command(mode, power_w)
        model.advance(seconds)
        truth = model.truth()
        assert 0.0 <= truth.battery_soc_pct <= 100.0
        assert truth.grid_power_w == pytest.approx(
            truth.load_power_w - truth.pv_power_w - truth.battery_power_w, abs=1e-9
        )
        assert all(math.isfinite(value) for value in astuple(truth) if isinstance(value, float))
        # A charge or discharge at 0 W holds (and so may one at 1e-300 W, as its rate is 0 %).
        assert truth.battery_mode in ({mode} if power_w >= 1e-6 else {mode, "hold"})
        if power_w == 0.0 and mode != "auto":
            assert truth.battery_mode == "hold"


@pytest.mark.parametrize("hour", [2, 11, 19])
def test_three_phase_readings_are_consistent(hour: int) -> None:
    model = SiteModel(SiteConfig(start=datetime(2026, 6, 21, hour, tzinfo=UTC)))
    model.set_battery_command("hold")  # so the grid meter sees import at night, export at noon
    model.advance(60.0)
    state = model.state()
    phases = grid_phase_readings(state)
    assert sum(p.active_w for p in phases) == pytest.approx(state.flows.grid_w, abs=1e-6)
    for phase in phases:
        assert 220.0 < phase.voltage_v < 240.0
        assert phase.apparent_va == pytest.approx(math.hypot(phase.active_w, phase.reactive_var))
        assert phase.current_a == pytest.approx(phase.apparent_va / phase.voltage_v)
        assert phase.power_factor == pytest.approx(phase.active_w / phase.apparent_va)
        assert math.copysign(1, phase.power_factor) == math.copysign(1, phase.active_w)
        assert phase.reactive_var > 0  # the house is inductive
    assert 49.9 < grid_frequency_hz(state) < 50.1
    voltages = (phases[0].voltage_v, phases[1].voltage_v, phases[2].voltage_v)
    for line_voltage in line_to_line_voltages(voltages):
        assert line_voltage == pytest.approx(230.0 * math.sqrt(3), rel=0.03)
    assert 0.0 <= neutral_current_a(phases) <= sum(p.current_a for p in phases)


def test_exporting_phases_read_negative_power_factor() -> None:
    model = SiteModel(SiteConfig(start=datetime(2026, 6, 21, 11, tzinfo=UTC)))
    model.set_battery_command("hold")
    phases = grid_phase_readings(model.state())
    assert all(phase.active_w < 0 and phase.power_factor < 0 for phase in phases)


def test_house_power_factor_stays_between_095_and_099() -> None:
    model = SiteModel(replace(SiteConfig(), heat_pump_power_w=0.0, pv_kwp=0.0))
    model.set_battery_command("hold")
    for _ in range(50):
        model.advance(97.0)
        for phase in grid_phase_readings(model.state()):
            assert 0.95 - 1e-9 <= phase.power_factor <= 0.99 + 1e-9


def test_heat_pump_reading_and_pattern() -> None:
    model = SiteModel(SiteConfig(seed=3))
    powers = set()
    for _ in range(30):
        model.advance(240.0)
        reading = heat_pump_reading(model.state())
        powers.add(reading.active_w)
        if reading.active_w == 0:
            assert reading.current_a == 0
            assert reading.power_factor == 1.0
        else:
            assert reading.power_factor == pytest.approx(0.96)
    assert powers == {0.0, SiteConfig().heat_pump_power_w}


def test_sun_is_highest_around_local_noon_in_summer() -> None:
    noon = solar_elevation_deg(172, 12.0 - 13.4 / 15, 52.5, 13.4)
    assert noon == pytest.approx(90 - 52.5 + 23.44, abs=1.0)
    assert solar_elevation_deg(172, 23.0, 52.5, 13.4) < 0
    assert solar_elevation_deg(355, 11.0, 52.5, 13.4) < 20


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SiteConfig(start=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="initial_soc"):
        SiteConfig(initial_soc=120.0)
    with pytest.raises(ValueError, match="time only moves forward"):
        SiteModel(SiteConfig()).advance(-1.0)


# Max charge 5000 W, max discharge 4000 W, so the two percentages are told apart.
CONTROLLED = SiteConfig(battery_max_discharge_w=4000.0, start=datetime(2026, 6, 21, 22, tzinfo=UTC))


@pytest.mark.parametrize(
    ("controls", "expected_w", "mode"),
    [
        (StorageControls(mode=1, charge_rate_pct=30.0), -1500.0, "charge"),
        (StorageControls(mode=1, charge_rate_pct=-20.0), 1000.0, "discharge"),  # % of WChaMax
        (StorageControls(mode=2, discharge_rate_pct=40.0), 1600.0, "discharge"),
        (StorageControls(mode=2, discharge_rate_pct=-10.0), -400.0, "charge"),
        (StorageControls(mode=1), 0.0, "hold"),
        (StorageControls(mode=2, charge_rate_pct=30.0), 0.0, "hold"),  # bit 0 is not set
        (StorageControls(mode=3), 0.0, "hold"),
        (StorageControls(mode=3, charge_rate_pct=30.0), -1500.0, "charge"),
        (StorageControls(mode=3, discharge_rate_pct=40.0), 1600.0, "discharge"),
        (StorageControls(mode=3, charge_rate_pct=30.0, discharge_rate_pct=40.0), 0.0, "hold"),
    ],
)
def test_storage_controls_force_the_battery(
    controls: StorageControls, expected_w: float, mode: str
) -> None:
    model = SiteModel(CONTROLLED)
    model.set_storage_controls(controls, control_write=True)
    for _ in range(2):
        truth = model.truth()
        assert truth.battery_power_w == expected_w
        assert truth.battery_mode == mode
        assert truth.battery_controls == controls
        model.advance(30.0)


def test_storage_controls_in_auto_follow_the_house() -> None:
    model = SiteModel(CONTROLLED)
    model.set_storage_controls(
        StorageControls(mode=0, charge_rate_pct=30.0, discharge_rate_pct=40.0), control_write=True
    )
    model.advance(60.0)
    truth = model.truth()
    assert truth.battery_mode == "auto"
    assert truth.battery_power_w == pytest.approx(truth.load_power_w)  # night: covers the load
    assert truth.grid_power_w == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": 4},
        {"mode": -1},
        {"charge_rate_pct": 100.5},
        {"discharge_rate_pct": -101.0},
        {"reserve_pct": 120.0},
        {"revert_s": -1.0},
    ],
)
def test_storage_controls_reject_nonsense(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"."):
        StorageControls(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "controls",
    [
        StorageControls(reserve_pct=45.0),
        StorageControls(mode=2, discharge_rate_pct=100.0, reserve_pct=45.0),
    ],
)
def test_the_battery_never_discharges_below_the_reserve(controls: StorageControls) -> None:
    model = SiteModel(CONTROLLED)  # night, 50 %: auto and forced discharge both drain it
    model.set_storage_controls(controls, control_write=True)
    socs = []
    for _ in range(3600):
        model.advance(1.0)
        socs.append(model.truth().battery_soc_pct)
    assert min(socs) >= 45.0 - 1e-6
    assert socs[-1] == pytest.approx(45.0, abs=1e-6)
    truth = model.truth()
    assert abs(truth.battery_power_w) < 0.5
    assert truth.grid_power_w == pytest.approx(truth.load_power_w, abs=0.5)


def test_a_reserve_above_the_soc_stops_discharging_at_once() -> None:
    model = SiteModel(CONTROLLED)
    model.advance(60.0)
    assert model.truth().battery_power_w > 100.0
    model.set_storage_controls(StorageControls(reserve_pct=60.0), control_write=False)
    assert model.truth().battery_power_w == 0.0
    model.set_battery_command("charge", 1000.0)  # charging stays allowed
    model.advance(10.0)
    assert model.truth().battery_power_w == -1000.0


def test_revert_timer_returns_to_auto_after_the_timeout() -> None:
    model = SiteModel(CONTROLLED)
    forced = StorageControls(mode=1, charge_rate_pct=30.0, revert_s=60.0)
    model.set_storage_controls(forced, control_write=True)
    model.advance(59.5)
    assert model.truth().battery_mode == "charge"
    model.advance(0.5)
    truth = model.truth()
    assert truth.battery_mode == "auto"
    assert truth.battery_controls == replace(forced, mode=0)  # the rates stay
    assert truth.battery_power_w == pytest.approx(truth.load_power_w)
    assert model.revert_at_s is None


def test_revert_timer_restarts_with_each_control_write() -> None:
    model = SiteModel(CONTROLLED)
    forced = StorageControls(mode=1, charge_rate_pct=30.0, revert_s=60.0)
    model.set_storage_controls(forced, control_write=True)
    model.advance(40.0)
    model.set_storage_controls(forced, control_write=True)  # the same value again
    model.advance(59.0)
    assert model.truth().battery_mode == "charge"
    model.set_storage_controls(replace(forced, reserve_pct=10.0), control_write=False)
    model.advance(1.0)  # a reserve write is no control write
    assert model.truth().battery_mode == "auto"


def test_revert_happens_at_its_time_inside_a_long_advance() -> None:
    model = SiteModel(CONTROLLED)
    model.set_battery_command("charge", 5000.0)
    model.set_storage_controls(replace(model.storage_controls, revert_s=10.0), control_write=True)
    charged_before = model.truth().battery_charged_kwh
    model.advance(100.0)
    truth = model.truth()
    assert truth.battery_mode == "auto"
    # 10 s at 5 kW, then the night's discharge: 13.9 Wh charged, not 139 Wh.
    assert (truth.battery_charged_kwh - charged_before) * 1000 == pytest.approx(
        5000 / 360, rel=1e-3
    )


def test_revert_time_zero_never_reverts_and_cancels_a_pending_revert() -> None:
    model = SiteModel(CONTROLLED)
    forced = StorageControls(mode=2, discharge_rate_pct=10.0, revert_s=30.0)
    model.set_storage_controls(forced, control_write=True)
    model.advance(20.0)
    model.set_storage_controls(replace(forced, revert_s=0.0), control_write=False)
    model.advance(600.0)
    assert model.truth().battery_mode == "discharge"


def test_battery_commands_map_onto_the_storage_controls() -> None:
    model = SiteModel(SiteConfig())
    model.set_battery_command("charge", 2000.0)
    assert model.storage_controls == StorageControls(mode=1, charge_rate_pct=40.0)
    model.set_battery_command("discharge", 1500.0)
    assert model.storage_controls == StorageControls(
        mode=2, charge_rate_pct=40.0, discharge_rate_pct=30.0
    )
    model.set_battery_command("auto")
    assert model.storage_controls.mode == 0
    model.set_battery_command("hold", 700.0)
    assert model.storage_controls == StorageControls(mode=3)
    assert model.battery_command.mode == BatteryMode.HOLD


@pytest.mark.parametrize(
    ("hour", "pv_kwp", "standby_w"), [(0, 8.0, 2.0), (11, 8.0, 0.0), (0, 0.0, 0.0)]
)
def test_pv_inverter_draws_standby_power_while_it_sleeps(
    hour: int, pv_kwp: float, standby_w: float
) -> None:
    config = SiteConfig(
        pv_kwp=pv_kwp, heat_pump_power_w=0.0, start=datetime(2026, 6, 21, hour, tzinfo=UTC)
    )
    model = SiteModel(config)
    model.set_battery_command("hold")
    model.advance(600.0)
    truth = model.truth()
    assert truth.pv_standby_w == standby_w
    assert truth.pv_standby_kwh == pytest.approx(standby_w * 600 / 3.6e6)
    assert truth.grid_power_w == pytest.approx(truth.load_power_w - truth.pv_power_w)
    assert sum(p.active_w for p in grid_phase_readings(model.state())) == pytest.approx(
        truth.grid_power_w
    )


def test_battery_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SiteConfig(battery_max_charge_w=0.0)
