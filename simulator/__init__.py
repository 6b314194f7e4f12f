"""Simulated home energy site behind Modbus TCP: deterministic physics, real register maps,
ground truth and fault injection for tests.

    sim = SiteSimulator()
    await sim.start()          # 127.0.0.1, ephemeral port in sim.port
    sim.advance(60)            # simulated seconds
    sim.truth.grid_power_w     # what really happens
    sim.device_values(1)       # what the grid meter's registers serve
    await sim.stop()
"""

from simulator.faults import Faults
from simulator.physics import GroundTruth, SiteConfig
from simulator.server import SiteSimulator

__all__ = ["Faults", "GroundTruth", "SiteConfig", "SiteSimulator"]
