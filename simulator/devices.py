"""The simulated site's devices by Modbus unit id.

- 1: Eastron SDM630 grid meter (input registers, float32, + import);
- 2: SunSpec PV inverter (models 1, 103 at 40000);
- 3: SunSpec battery storage (models 1, 124, 802 at 40000), controllable through model 124;
- 4: SunSpec meter on the PV inverter's output (models 1, 203 at 50000);
- 5: Eastron SDM120 metering the heat pump.

`site_devices(extra_meters)` adds copies of the grid meter on the unit ids after these, for
load tests that need many devices on one hub.

Layouts: the same site as other vendors wire it. "solaredge" serves the PV inverter and its two
meters (grid and consumption) on unit 2, SolarEdge-style (simulator.solaredge), in place of
units 1, 2 and 4. "hybrid" serves a hybrid inverter with its battery on unit 2
(simulator.hybrid: 1, 103, 120-123, 160, 124, 802), in place of units 2, 3 and 4. "float"
serves the PV inverter and its meter in SunSpec's float models, 113 on unit 2 and 213 on unit 4
(simulator.float_models). "sungrow" serves a Sungrow SH10RT hybrid with its battery on unit 2
(simulator.sungrow), in place of units 2, 3 and 4.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.eastron import SDM120_HEAT_PUMP_METER, SDM630_GRID_METER, sdm630_grid_meter_copy
from simulator.float_models import FLOAT_PV_INVERTER, FLOAT_PV_METER
from simulator.hybrid import HYBRID_INVERTER
from simulator.registers import DeviceMap
from simulator.solaredge import SOLAREDGE_INVERTER
from simulator.sungrow import SUNGROW_HYBRID
from simulator.sunspec_devices import BATTERY_STORAGE, PV_INVERTER, PV_METER

DEVICES: Mapping[int, DeviceMap] = {
    device.unit_id: device
    for device in (
        SDM630_GRID_METER,
        PV_INVERTER,
        BATTERY_STORAGE,
        PV_METER,
        SDM120_HEAT_PUMP_METER,
    )
}

LAYOUTS: Mapping[str, Mapping[int, DeviceMap]] = {
    "standard": DEVICES,
    "solaredge": {
        device.unit_id: device
        for device in (SOLAREDGE_INVERTER, BATTERY_STORAGE, SDM120_HEAT_PUMP_METER)
    },
    "hybrid": {
        device.unit_id: device
        for device in (SDM630_GRID_METER, HYBRID_INVERTER, SDM120_HEAT_PUMP_METER)
    },
    "sungrow": {
        device.unit_id: device
        for device in (SDM630_GRID_METER, SUNGROW_HYBRID, SDM120_HEAT_PUMP_METER)
    },
    "float": {
        device.unit_id: device
        for device in (
            SDM630_GRID_METER,
            FLOAT_PV_INVERTER,
            BATTERY_STORAGE,
            FLOAT_PV_METER,
            SDM120_HEAT_PUMP_METER,
        )
    },
}

# The highest unit id a Modbus request can address.
MAX_UNIT_ID = 247


def site_devices(extra_meters: int = 0, layout: str = "standard") -> Mapping[int, DeviceMap]:
    """The site's devices, then `extra_meters` copies of the grid meter on the next unit ids."""
    first = max(DEVICES) + 1
    if not 0 <= extra_meters <= MAX_UNIT_ID - first + 1:
        raise ValueError(f"extra meters fit on unit ids {first}..{MAX_UNIT_ID}")
    copies = range(first, first + extra_meters)
    return {**LAYOUTS[layout], **{unit: sdm630_grid_meter_copy(unit) for unit in copies}}
