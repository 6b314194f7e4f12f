"""The simulated site's devices by Modbus unit id.

- 1: Eastron SDM630 grid meter (input registers, float32, + import);
- 2: SunSpec PV inverter (models 1, 103 at 40000);
- 3: SunSpec battery storage (models 1, 124, 802 at 40000), controllable through model 124;
- 4: SunSpec meter on the PV inverter's output (models 1, 203 at 50000);
- 5: Eastron SDM120 metering the heat pump.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.eastron import SDM120_HEAT_PUMP_METER, SDM630_GRID_METER
from simulator.registers import DeviceMap
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
