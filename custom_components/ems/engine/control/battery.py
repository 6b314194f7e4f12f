"""Battery control on a hub: command state per battery, decisions, writes, read-back and
release.

The policy is pure (`policy`); `BatteryControl.decide` applies it to a cycle's readings and
says what to write, `apply` writes it through the hub and confirms each write by reading it
back. It also keeps what entities and services show.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
import logging
import math
from typing import Any

from ..modbus.codec import decode_words, encode_value, scale_exponent
from ..modbus.plan import ReadBlock, RegisterImage
from ..modbus.transport import ModbusHub, ModbusTransportError
from ..model import Access, ChannelSpec, Device, DeviceRole, DeviceState
from ..numbers import finite
from .commands import (
    BatteryCommand,
    BatteryLimits,
    BatteryMode,
    BatteryObservation,
    Setpoint,
    validate_limits,
)
from .policy import resolve
from .sunspec124 import (
    CHARGE_RATE,
    DISCHARGE_RATE,
    REVERT_TIMEOUT,
    STORAGE_CONTROL_MODE,
    cycle_writes,
    sunspec_124_writes,
)

_LOGGER = logging.getLogger(__name__)

CONTROL_CHANNELS = (STORAGE_CONTROL_MODE, CHARGE_RATE, DISCHARGE_RATE, REVERT_TIMEOUT)
# A write that does not read back is tried this many times in all before it counts as failed.
WRITE_ATTEMPTS = 2
# After this many failed cycles in a row the user is asked to look (a repair issue).
FAILURES_BEFORE_REPAIR = 3


class WriteFailedError(Exception):
    """A control write that did not take, after its retries."""

    def __init__(self, device: Device, key: str, detail: str) -> None:
        """Name the device and the register, for the log and the translated error."""
        super().__init__(f"{device.name}: writing {key} failed ({detail})")
        self.device = device
        self.key = key


def controllable(device: Device) -> bool:
    """A battery whose profile maps SunSpec 124's control points as writable channels."""
    if device.role is not DeviceRole.BATTERY:
        return False
    writable = {s.key for s in device.profile.channels if s.access is Access.READ_WRITE}
    return set(CONTROL_CHANNELS) <= writable


@dataclass(frozen=True, kw_only=True, slots=True)
class ModeSettings:
    """What a mode picked in the UI runs with (the number entities); services bring their own."""

    target_soc: float = 100.0
    grid_setpoint_w: float = 0.0
    peak_power_w: float = 5000.0
    recharge_power_w: float = 0.0

    def command(self, mode: BatteryMode) -> BatteryCommand:
        """The command for a mode picked in the UI: as fast as the limits allow, no expiry."""
        return BatteryCommand(
            mode=mode,
            target_soc=self.target_soc if mode is BatteryMode.FORCE_CHARGE else None,
            grid_setpoint_w=self.grid_setpoint_w,
            peak_power_w=self.peak_power_w if mode is BatteryMode.PEAK_SHAVING else None,
            recharge_power_w=self.recharge_power_w or None,
        )


@dataclass(kw_only=True)
class BatteryState:
    """What one battery was told, and how its writes went."""

    command: BatteryCommand = field(default_factory=BatteryCommand)
    limits: BatteryLimits = field(default_factory=BatteryLimits)
    settings: ModeSettings = field(default_factory=ModeSettings)
    applied: Setpoint | None = None
    last_write_at: float | None = None
    writes: int = 0
    last_result: str = "none"
    failures_in_a_row: int = 0
    # Set once ems has written anything: only then does it owe the device a return to auto.
    engaged: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryReport:
    """One battery as the cycle leaves it, for the entities: what it was told, what it does
    and how the writes went."""

    command: BatteryCommand
    limits: BatteryLimits
    settings: ModeSettings
    applied: Setpoint | None
    last_result: str
    writes: int

    @property
    def mode(self) -> BatteryMode:
        """The mode in force: the one applied this cycle, else the one commanded."""
        return self.applied.mode if self.applied else self.command.mode


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryWrites:
    """One battery's writes of one cycle, in the order they go out, for the command they serve."""

    device: Device
    command: BatteryCommand
    limits: BatteryLimits
    values: dict[str, float]
    decided_at: float


@dataclass(kw_only=True)
class BatteryControl:
    """Steers the controllable batteries of one hub."""

    hub: ModbusHub
    devices: dict[str, Device]
    revert_s: int
    states: dict[str, BatteryState] = field(default_factory=dict)
    # The last register image: writes scale their values with the device's scale factors.
    image: RegisterImage = field(default_factory=dict)
    # A cycle and an action must not interleave their writes to one battery.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        """One state per controllable battery."""
        for device in self.devices.values():
            if controllable(device):
                self.states.setdefault(device.id, BatteryState())

    def reports(self) -> dict[str, BatteryReport]:
        """Every battery's state now, as plain data."""
        return {
            device_id: BatteryReport(
                command=battery.command,
                limits=battery.limits,
                settings=battery.settings,
                applied=battery.applied,
                last_result=battery.last_result,
                writes=battery.writes,
            )
            for device_id, battery in self.states.items()
        }

    def observe(
        self, device: Device, state: DeviceState, grid_power_w: float | None, now: float
    ) -> BatteryObservation:
        """This cycle's readings as control.py takes them."""
        values = {
            key: float(reading.value)
            for key, reading in state.readings.items()
            if state.online and reading.usable and isinstance(reading.value, int | float)
        }
        return BatteryObservation(
            timestamp=now,
            soc=values.get("SOC"),
            battery_power_w=values.get("ActivePower"),
            grid_power_w=grid_power_w,
            device_max_charge_w=values.get("MaxChargePower"),
            device_max_discharge_w=values.get("MaxDischargePower") or values.get("MaxChargePower"),
        )

    def decide(
        self,
        device: Device,
        state: DeviceState,
        image: RegisterImage,
        grid_power_w: float | None,
        now: float,
    ) -> BatteryWrites | None:
        """Resolve the battery's command on this cycle's readings: what to write (what changed,
        or everything again when the re-assert is due), or None when nothing is to be written."""
        self.image = image or self.image
        battery = self.states[device.id]
        observation = self.observe(device, state, grid_power_w, now)
        setpoint = resolve(battery.command, battery.limits, observation)
        battery.applied = setpoint
        if setpoint.mode is BatteryMode.AUTO and not battery.engaged:
            return None  # the device runs itself; ems has nothing to undo
        if setpoint.mode is BatteryMode.AUTO and battery.command.mode is not BatteryMode.AUTO:
            battery.command = BatteryCommand()  # an expired command is over
        desired = self._desired(setpoint, observation)
        current = {
            key: finite(state.readings[key].value) if key in state.readings else None
            for key in desired
        }
        writes = cycle_writes(
            desired,
            current,
            last_write_at=battery.last_write_at,
            now=now,
            revert_s=self.revert_s,
        )
        if not writes:
            if setpoint.mode is BatteryMode.AUTO:
                battery.engaged = False
            return None
        return BatteryWrites(
            device=device,
            command=battery.command,
            limits=battery.limits,
            values=writes,
            decided_at=now,
        )

    async def apply(self, writes: BatteryWrites) -> None:
        """Carry out a decision: each value written and read back, or `WriteFailedError`.

        A decision that a newer command or new limits overtook (an action ran in between) is
        dropped: the action wrote its own.
        """
        async with self._lock:
            battery = self.states[writes.device.id]
            if battery.command is writes.command and battery.limits is writes.limits:
                await self._apply(writes.device, battery, writes.values, writes.decided_at)

    async def run_now(
        self,
        device: Device,
        state: DeviceState,
        grid_power_w: float | None,
        now: float,
    ) -> None:
        """Decide and write at once, on the last readings (an action's new command)."""
        async with self._lock:
            writes = self.decide(device, state, self.image, grid_power_w, now)
            if writes is not None:
                await self._apply(device, self.states[device.id], writes.values, now)

    def _desired(self, setpoint: Setpoint, observation: BatteryObservation) -> dict[str, float]:
        max_charge = observation.device_max_charge_w or 0.0
        max_discharge = observation.device_max_discharge_w or max_charge
        if setpoint.mode is not BatteryMode.AUTO and (max_charge <= 0 or max_discharge <= 0):
            # Without the device's ratings a rate cannot be expressed: hold instead of guessing.
            setpoint = replace(setpoint, mode=BatteryMode.HOLD, power_w=0.0)
            max_charge = max_discharge = 1.0
        return sunspec_124_writes(
            setpoint,
            max_charge_w=max(max_charge, 1.0),
            max_discharge_w=max(max_discharge, 1.0),
            revert_s=self.revert_s if setpoint.mode is not BatteryMode.AUTO else 0,
        )

    async def _apply(
        self,
        device: Device,
        battery: BatteryState,
        writes: dict[str, float],
        now: float,
    ) -> None:
        battery.engaged = True
        try:
            # Every value is encoded before the first is sent: a setpoint that cannot be
            # written must not leave the device with half a command.
            encoded = [
                self._encoded(device, device.profile.channel(key), value)
                for key, value in writes.items()
            ]
            for spec, raw in encoded:
                await self._write_confirmed(device, spec, raw)
                battery.writes += 1
        except WriteFailedError:
            battery.last_result = "failed"
            battery.failures_in_a_row += 1
            raise
        battery.last_write_at = now
        battery.last_result = "ok"
        battery.failures_in_a_row = 0

    def _encoded(self, device: Device, spec: ChannelSpec, value: float) -> tuple[ChannelSpec, int]:
        """The raw register value for a setpoint, or why it cannot be written."""
        if spec.access is not Access.READ_WRITE:
            raise WriteFailedError(device, spec.key, "the profile marks it read-only")
        exponent = scale_exponent(
            spec.register, self.image.get((device.unit_id, spec.register.function), {})
        )
        if exponent is None:
            raise WriteFailedError(device, spec.key, "its scale factor is unknown or out of range")
        raw = value / (spec.register.scale * 10.0**exponent)
        if not math.isfinite(raw):
            raise WriteFailedError(device, spec.key, f"{value} does not fit the register")
        return spec, round(raw)

    async def _write_confirmed(self, device: Device, spec: ChannelSpec, raw: int) -> None:
        """FC6/FC16, then read back; a mismatch or an error is retried once. Only a channel
        the profile marks `rw` is ever written (checked here too: this is the one way out)."""
        if spec.access is not Access.READ_WRITE:
            raise WriteFailedError(device, spec.key, "the profile marks it read-only")
        register = spec.register
        words = encode_value(register, raw)
        detail = ""
        for _ in range(WRITE_ATTEMPTS):
            try:
                await self.hub.write(device.unit_id, register.address, words)
                block = ReadBlock(
                    unit_id=device.unit_id,
                    function=register.function,
                    start=register.address,
                    count=register.count,
                )
                echoed = decode_words(register, await self.hub.read(block))
            except ModbusTransportError as err:
                detail = str(err)
                continue
            if echoed == raw:
                return
            detail = f"read back {echoed}, wrote {raw}"
        _LOGGER.warning("Writing %s to %s failed: %s", spec.key, device.name, detail)
        raise WriteFailedError(device, spec.key, detail)

    def state_dict(self) -> dict[str, Any]:
        """Limits and mode settings survive a restart; commands do not (the device reverts)."""
        return {
            device_id: {"limits": asdict(battery.limits), "settings": asdict(battery.settings)}
            for device_id, battery in self.states.items()
        }

    def restore(self, data: object) -> None:
        """Resume limits and settings; anything unreadable keeps the defaults."""
        if not isinstance(data, dict):
            return
        for device_id, saved in data.items():
            battery = self.states.get(device_id)
            if battery is None or not isinstance(saved, dict):
                continue
            with suppress(TypeError, ValueError):
                limits = BatteryLimits(**saved.get("limits", {}))
                if not validate_limits(limits):
                    battery.limits = limits
            with suppress(TypeError, ValueError):
                battery.settings = ModeSettings(**saved.get("settings", {}))

    async def release(self) -> None:
        """Give every battery ems steered back to its own logic (unload, HA stop)."""
        for device_id, battery in self.states.items():
            if not battery.engaged:
                continue
            device = self.devices[device_id]
            auto = Setpoint(mode=BatteryMode.AUTO, power_w=None)
            writes = sunspec_124_writes(auto, max_charge_w=1, max_discharge_w=1, revert_s=0)
            battery.command = BatteryCommand()
            try:
                for key, value in writes.items():
                    spec, raw = self._encoded(device, device.profile.channel(key), value)
                    await self._write_confirmed(device, spec, raw)
            except (WriteFailedError, KeyError) as err:
                # The device's own revert timer still returns it to auto.
                _LOGGER.warning("Could not return %s to auto: %s", device.name, err)
            battery.engaged = False
