"""A SolarEdge-style SunSpec unit: the inverter and the meters wired to it, on one unit id.

Layout, as SolarEdge's technical note "SunSpec Implementation" lays it out (its version was
not at hand; the addresses are cross-checked against solaredge-modbus-multi's `const.py`,
`METER_REG_BASE` {1: 40121, 2: 40295, 3: 40469}, and the lengths its `meter.py` requires):

| address | model | length | what                                                     |
|---------|-------|--------|----------------------------------------------------------|
| 40000   | SunS  |        | marker                                                   |
| 40002   | 1     | 65     | the inverter's common model, without the pad register    |
| 40069   | 103   | 50     | the three-phase inverter                                 |
| 40121   | 1     | 65     | meter 1's common model                                   |
| 40188   | 203   | 105    | meter 1: export + import meter at the grid connection    |
| 40295   | 1     | 65     | meter 2's common model                                   |
| 40362   | 203   | 105    | meter 2: consumption meter on the house's feed           |
| 40469   | end   |        | 0xFFFF, 0                                                |

The common models' length, 65, is one short of the definition's 66: SolarEdge omits the pad.
Meter signs are those of unit 4 (sunspec_devices): W > 0 imports into the metered circuit, with
TotWhImp and TotWhExp as the definition pairs them. Whether SolarEdge firmware signs its meters
this way has not been checked on hardware.

Keys: the inverter's points are "1.*" and "103.*" as on unit 2; meter 1's "1@grid.*" and
"203@grid.*"; meter 2's "1@consumption.*" and "203@consumption.*".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from simulator.physics import SiteState, grid_phase_readings, phase_reading, phase_voltages
from simulator.registers import DeviceMap, Value
from simulator.sunspec import sunspec_device
from simulator.sunspec_devices import (
    COMMON,
    INVERTER,
    METER,
    SUNSPEC_BASE,
    common_values,
    inverter_values,
    meter_203_values,
)

SOLAREDGE_UNIT = 2
# Where the document puts each meter's common model.
METER_COMMON_ADDRESSES = (40121, 40295)
_COMMON_LENGTH = 65


def _values(state: SiteState) -> dict[str, Value]:
    counters = state.counters_kwh
    grid = grid_phase_readings(state)
    voltages = phase_voltages(state)
    load = tuple(phase_reading(v, state.flows.load_w / 3, 0.0) for v in voltages)
    load_wh = counters["load"] * 1000.0
    return {
        **inverter_values(state),
        **common_values(SOLAREDGE_UNIT, "SimMeter E+I", "Export+Import", "SEM-0001", "1@grid"),
        **meter_203_values(
            "203@grid",
            state,
            grid,
            imported_wh=_by_phase(counters, "grid_import"),
            exported_wh=_by_phase(counters, "grid_export"),
        ),
        **common_values(
            SOLAREDGE_UNIT, "SimMeter Cons", "Consumption", "SEM-0002", "1@consumption"
        ),
        **meter_203_values(
            "203@consumption",
            state,
            (load[0], load[1], load[2]),
            imported_wh=(load_wh, load_wh / 3, load_wh / 3, load_wh / 3),
            exported_wh=(0.0, 0.0, 0.0, 0.0),
        ),
    }


def _by_phase(counters: Mapping[str, float], name: str) -> tuple[float, float, float, float]:
    """A grid counter in Wh: the total, then phases 1 to 3."""
    return (
        counters[name] * 1000.0,
        counters[f"{name}_l1"] * 1000.0,
        counters[f"{name}_l2"] * 1000.0,
        counters[f"{name}_l3"] * 1000.0,
    )


SOLAREDGE_INVERTER: DeviceMap = sunspec_device(
    "SolarEdge-style inverter with two meters",
    SOLAREDGE_UNIT,
    SUNSPEC_BASE,
    [
        replace(COMMON, length=_COMMON_LENGTH),
        INVERTER,
        replace(COMMON, instance="grid", length=_COMMON_LENGTH),
        replace(METER, instance="grid"),
        replace(COMMON, instance="consumption", length=_COMMON_LENGTH),
        replace(METER, instance="consumption"),
    ],
    _values,
)
