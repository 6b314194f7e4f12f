"""The ledger settles ended hours once, re-settles only on change, and carries the running hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from zoneinfo import ZoneInfo

import pytest

from custom_components.ems.engine.books.ledger import SERIES_ROLES, EnergyLedger
from custom_components.ems.engine.books.periods import Period
from custom_components.ems.engine.tariffs.model import (
    Co2Factor,
    DemandCharge,
    DynamicPrice,
    Emissions,
    FeePeriod,
    FixedFee,
    FlatPrice,
    Tariff,
)

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 1, 15, 0, 0, tzinfo=UTC).timestamp()
TARIFF = Tariff(import_price=FlatPrice(price=0.30), export_price=FlatPrice(price=0.08))
CO2 = Emissions(source=Co2Factor(kg_per_kwh=0.4), count_export_as_avoided=True)


def _feed(ledger: EnergyLedger, minutes: range, import_kw: float = 1.2) -> None:
    for minute in minutes:
        kwh = import_kw * minute / 60
        energies = dict.fromkeys(SERIES_ROLES, 0.0)
        energies.update(grid_import=kwh, grid_export=kwh / 4, consumption=kwh)
        ledger.add(START + minute * 60, energies)


def test_hours_are_settled_once_with_cost_and_co2() -> None:
    """Two ended hours at 1.2 kWh/h import, 0.3 kWh/h export: priced, then not re-sent."""
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(150))
    changed = ledger.settle(TARIFF, CO2)
    assert [h.start_ts for h in changed] == [START, START + 3600]
    first = changed[0]
    assert first.energy_kwh["grid_import"] == pytest.approx(1.2)
    assert first.cost == pytest.approx(0.36)
    assert first.compensation == pytest.approx(0.3 * 0.08)
    assert first.co2_kg == pytest.approx(0.48)
    assert first.co2_avoided_kg == pytest.approx(0.12)
    assert ledger.running is not None
    assert ledger.running.energy_kwh["grid_import"] == pytest.approx(1.2 * 29 / 60)
    assert ledger.settle(TARIFF, CO2) == []

    today = ledger.totals_since(START)
    assert today.energy_kwh["grid_import"] == pytest.approx(1.2 * 149 / 60, rel=1e-6)
    assert today.net_cost == pytest.approx(today.cost - today.compensation)


def test_outage_is_spread_over_the_missing_hours() -> None:
    """Three hours without samples: their energy is spread, flagged, and sums to the truth."""
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(61))
    ledger.settle(TARIFF, None)
    _feed(ledger, range(240, 301))
    changed = ledger.settle(TARIFF, None)
    missing = [h for h in changed if START + 3600 <= h.start_ts < START + 4 * 3600]
    assert len(missing) == 3
    assert all(h.estimated for h in missing)
    assert {round(h.energy_kwh["grid_import"], 6) for h in missing} == {1.2}
    total = sum(h.energy_kwh["grid_import"] for h in ledger.hours.values())
    assert total == pytest.approx(1.2 * 5, rel=1e-9)


def test_no_tariff_means_no_cost() -> None:
    """Without a tariff, energy is still booked and cost stays unknown, not 0."""
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(61))
    (hour,) = ledger.settle(None, None)
    assert hour.cost is None
    assert ledger.totals_since(START).cost is None


def test_restore_round_trip_and_garbage() -> None:
    """Samples and hours survive a restart through JSON; garbage starts fresh."""
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(130))
    ledger.settle(TARIFF, CO2)
    again = EnergyLedger(tz=BERLIN)
    again.restore(json.loads(json.dumps(ledger.state_dict())))
    assert again.hours == ledger.hours
    assert again.settle(TARIFF, CO2) == []
    for garbage in (None, [], {"timestamps": "x"}, {"timestamps": [1], "totals": {}}):
        fresh = EnergyLedger(tz=BERLIN)
        fresh.restore(garbage)
        assert fresh.hours == {}


def test_samples_are_kept_once_a_minute_and_skip_garbage() -> None:
    """A 10 s cycle keeps one sample a minute; non-finite totals are not kept."""
    ledger = EnergyLedger(tz=BERLIN)
    for second in range(0, 300, 10):
        ledger.add(START + second, dict.fromkeys(SERIES_ROLES, second / 3600))
    assert len(ledger.timestamps) == 5
    assert not ledger.add(START + 600, dict.fromkeys(SERIES_ROLES, float("nan")))


def test_dst_day_has_23_hours() -> None:
    """Berlin's spring-forward day is booked in 23 local hours."""
    day = datetime(2026, 3, 29, tzinfo=BERLIN)
    ledger = EnergyLedger(tz=BERLIN)
    start = day.timestamp()
    end = (day + timedelta(days=1)).timestamp()
    for minute in range(int((end - start) // 60) + 1):
        ledger.add(start + minute * 60, dict.fromkeys(SERIES_ROLES, minute / 60))
    ledger.settle(None, None)
    assert len([s for s in ledger.hours if start <= s < end]) == 23


def test_a_revised_past_price_reprices_settled_hours() -> None:
    """Hours settled at one dynamic price are priced again, and handed back, once a revision
    reaches back into them; without `reprice_from` they stand."""
    first = {START: 0.20, START + 3600: 0.25, START + 7200: 0.30}
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(150))
    settled = ledger.settle(_dynamic(first), None)
    assert [h.cost for h in settled] == pytest.approx([1.2 * 0.20, 1.2 * 0.25])

    revised = {**first, START: 0.40}
    _feed(ledger, range(150, 152))
    assert ledger.settle(_dynamic(revised), None) == []  # not told: what was settled stands
    _feed(ledger, range(152, 154))
    (hour,) = ledger.settle(_dynamic(revised), None, reprice_from=START + 600)
    assert hour.start_ts == START
    assert hour.cost == pytest.approx(1.2 * 0.40)


def test_a_revision_before_the_samples_keeps_what_was_settled() -> None:
    """An hour the kept samples only partly cover is never re-settled from that part."""
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(150))
    ledger.settle(_dynamic({START: 0.20}), None)
    del ledger.timestamps[:30]  # as if pruned: the first hour is covered from 00:30 only
    for values in ledger.totals.values():
        del values[:30]
    _feed(ledger, range(150, 152))
    changed = ledger.settle(_dynamic({START: 0.50}), None, reprice_from=START)
    assert START not in [h.start_ts for h in changed]
    assert ledger.hours[START].cost == pytest.approx(1.2 * 0.20)
    assert [h.cost for h in changed] == pytest.approx([1.2 * 0.50])  # 01:00, fully covered


def _dynamic(prices: dict[float, float]) -> Tariff:
    return Tariff(import_price=DynamicPrice(prices=prices, max_hold_s=6 * 3600))


def test_net_cost_carries_the_fixed_fee_and_the_demand_charge() -> None:
    """Today: the day's share of a monthly fee. This month: the fee in full and the demand
    charge on the month's peak quarter hour, as the monthly bill charges them."""
    tariff = Tariff(
        import_price=FlatPrice(price=0.30),
        fee=FixedFee(amount=31.0, per=FeePeriod.MONTH),  # January: 1.00 a day
        demand_charge=DemandCharge(per_kw_month=10.0),
    )
    ledger = EnergyLedger(tz=BERLIN)
    _feed(ledger, range(150))  # 1.2 kW all along
    ledger.settle(tariff, None)
    day_start = datetime(2026, 1, 15, tzinfo=BERLIN).timestamp()
    today = ledger.totals_since(day_start, tariff=tariff)
    assert (today.fixed_fee, today.demand_charge) == (pytest.approx(1.0), 0.0)
    assert today.net_cost == pytest.approx(today.cost + 1.0)
    month_start = datetime(2026, 1, 1, tzinfo=BERLIN).timestamp()
    month = ledger.totals_since(month_start, tariff=tariff, period=Period.MONTH)
    assert month.fixed_fee == pytest.approx(31.0)
    assert month.demand_charge == pytest.approx(1.2 * 10.0)
    assert month.net_cost == pytest.approx(month.cost + 31.0 + 12.0)
    daily = Tariff(import_price=FlatPrice(price=0.3), fee=FixedFee(amount=0.5, per=FeePeriod.DAY))
    assert ledger.totals_since(month_start, tariff=daily, period=Period.MONTH).fixed_fee == 0.5
    assert ledger.totals_since(month_start).net_cost == pytest.approx(month.cost)  # no tariff
