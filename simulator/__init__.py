"""Simulated home energy site behind Modbus TCP: deterministic physics, real register maps,
ground truth and fault injection for tests.

    sim = SiteSimulator()
    await sim.start()          # 127.0.0.1, ephemeral port in sim.port
    sim.advance(60)            # simulated seconds
    sim.truth.grid_power_w     # what really happens
    sim.device_values(1)       # what the grid meter's registers serve
    sim.device_values(3)["802.SoC"]  # SunSpec devices: "<model>.<point>", scaled
    sim.control_writes         # accepted control writes: (time, "124.InWRte", 30.0), ...
    await sim.stop()

Units: 1 SDM630 grid meter, 2 SunSpec PV inverter, 3 SunSpec battery storage, 4 SunSpec PV
meter (base 50000), 5 SDM120 heat pump meter (simulator.devices).
"""

from simulator.faults import Faults
from simulator.physics import BatteryMode, GroundTruth, SiteConfig, StorageControls
from simulator.server import ControlWrite, SiteSimulator

__all__ = [
    "BatteryMode",
    "ControlWrite",
    "Faults",
    "GroundTruth",
    "SiteConfig",
    "SiteSimulator",
    "StorageControls",
]
