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
from ..recipes import ControlRecipe, FallbackKind, Readback, SetpointKind
from .commands import (
    BatteryCommand,
    BatteryLimits,
    BatteryMode,
    BatteryObservation,
    Setpoint,
    validate_limits,
)
from .policy import resolve
from .recipe import (
    cycle_writes,
    desired_values,
    offered_modes,
    rearm_channels,
)

_LOGGER = logging.getLogger(__name__)

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
    """A battery whose profile carries a control recipe (checked against it when it loaded)."""
    return device.role is DeviceRole.BATTERY and device.profile.control is not None


def recipe_of(device: Device) -> ControlRecipe:
    """The control recipe of a battery ems steers."""
    recipe = device.profile.control
    if recipe is None:
        raise KeyError(f"{device.name} has no control recipe")
    return recipe


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
    # When a write last restarted the device's fallback timer (a recipe's `rearm` step).
    last_write_at: float | None = None
    # What ems last wrote to each register: a write-only one is compared with it.
    last_written: dict[str, float] = field(default_factory=dict)
    writes: int = 0
    writes_by_register: dict[str, int] = field(default_factory=dict)
    # Writes of registers the device keeps in EEPROM or flash, which wear.
    persisted_writes: int = 0
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
    writes_by_register: dict[str, int]
    persisted_writes: int
    modes: tuple[BatteryMode, ...]

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
    kind: SetpointKind
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
                writes_by_register=dict(battery.writes_by_register),
                persisted_writes=battery.persisted_writes,
                modes=offered_modes(recipe_of(self.devices[device_id])),
            )
            for device_id, battery in self.states.items()
        }

    def observe(
        self, device: Device, state: DeviceState, grid_power_w: float | None, now: float
    ) -> BatteryObservation:
        """This cycle's readings as control.py takes them."""
        values = _usable_values(state)
        recipe = recipe_of(device)
        return BatteryObservation(
            timestamp=now,
            soc=values.get("SOC"),
            battery_power_w=values.get("ActivePower"),
            grid_power_w=grid_power_w,
            device_max_charge_w=_first(values, recipe.charge_rating),
            device_max_discharge_w=_first(values, recipe.discharge_rating),
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
        recipe = recipe_of(device)
        kind, desired = self._desired(recipe, setpoint, observation)
        current = {key: finite(reading.value) for key, reading in state.readings.items()}
        writes = cycle_writes(
            recipe,
            desired,
            current,
            kind=kind,
            last_written=battery.last_written,
            last_rearm_at=battery.last_write_at,
            now=now,
            window_s=self._window_s(recipe),
        )
        if not writes:
            if setpoint.mode is BatteryMode.AUTO:
                battery.engaged = False
            return None
        return BatteryWrites(
            device=device,
            command=battery.command,
            limits=battery.limits,
            kind=kind,
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
                await self._apply(writes, battery)

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
                await self._apply(replace(writes, decided_at=now), self.states[device.id])

    def fallback_s(self, recipe: ControlRecipe) -> int:
        """The fallback time ems writes: its own revert time, within what the device takes."""
        limit = recipe.fallback.max_s
        return min(self.revert_s, limit) if limit else self.revert_s

    def _window_s(self, recipe: ControlRecipe) -> float:
        """How long the device keeps a forced mode without ems: its timer, or the vendor's
        documented window for a device with no fallback of its own."""
        if recipe.fallback.kind is FallbackKind.NONE:
            return recipe.fallback.window_s
        return self.fallback_s(recipe)

    def _desired(
        self, recipe: ControlRecipe, setpoint: Setpoint, observation: BatteryObservation
    ) -> tuple[SetpointKind, dict[str, float]]:
        max_charge = observation.device_max_charge_w or 0.0
        max_discharge = observation.device_max_discharge_w or max_charge
        fallback_s = self.fallback_s(recipe)
        try:
            return desired_values(
                recipe,
                setpoint,
                charge_rating_w=max_charge,
                discharge_rating_w=max_discharge,
                fallback_s=fallback_s,
            )
        except ValueError:
            # Without the device's ratings a rate cannot be expressed: hold instead of guessing.
            hold = replace(setpoint, mode=BatteryMode.HOLD, power_w=0.0)
            return desired_values(
                recipe, hold, charge_rating_w=1.0, discharge_rating_w=1.0, fallback_s=fallback_s
            )

    async def _apply(self, writes: BatteryWrites, battery: BatteryState) -> None:
        device = writes.device
        recipe = recipe_of(device)
        rearming = set(rearm_channels(recipe, writes.kind))
        battery.engaged = True
        try:
            # Every value is encoded before the first is sent: a setpoint that cannot be
            # written must not leave the device with half a command.
            encoded = [
                (key, value, *self._encoded(device, device.profile.channel(key), value))
                for key, value in writes.values.items()
            ]
            for key, value, spec, raw in encoded:
                await self._write_confirmed(device, spec, raw, _readback(recipe, key))
                _count(battery, recipe, key, value)
        except WriteFailedError:
            battery.last_result = "failed"
            battery.failures_in_a_row += 1
            raise
        if rearming & writes.values.keys():
            battery.last_write_at = writes.decided_at
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

    async def _write_confirmed(
        self, device: Device, spec: ChannelSpec, raw: int, readback: Readback | None
    ) -> None:
        """FC6/FC16, then read back where the recipe says; a mismatch or an error is retried
        once. Only a channel the profile marks `rw` is ever written (checked here too: this is
        the one way out). A write-only register (`readback: none`) is taken as written."""
        if spec.access is not Access.READ_WRITE:
            raise WriteFailedError(device, spec.key, "the profile marks it read-only")
        register = spec.register
        words = encode_value(register, raw)
        detail = ""
        for _ in range(WRITE_ATTEMPTS):
            try:
                await self.hub.write(device.unit_id, register.address, words)
                if readback is None:
                    return
                echoed = await self._read_back(device, spec, readback)
            except ModbusTransportError as err:
                detail = str(err)
                continue
            if readback.channel == spec.key and echoed == raw:
                return
            if readback.channel != spec.key and echoed is not None:
                wrote = self._physical(device, spec, raw)
                if wrote is not None and abs(float(echoed) - wrote) <= readback.tolerance:
                    return
            detail = f"read back {echoed}, wrote {raw}"
        _LOGGER.warning("Writing %s to %s failed: %s", spec.key, device.name, detail)
        raise WriteFailedError(device, spec.key, detail)

    async def _read_back(
        self, device: Device, written: ChannelSpec, readback: Readback
    ) -> float | str | None:
        """The register's own raw value, or the readback channel's physical one."""
        spec = (
            written if readback.channel == written.key else device.profile.channel(readback.channel)
        )
        register = spec.register
        block = ReadBlock(
            unit_id=device.unit_id,
            function=register.function,
            start=register.address,
            count=register.count,
        )
        echoed = decode_words(register, await self.hub.read(block))
        if spec is written or not isinstance(echoed, int | float):
            return echoed
        return self._physical(device, spec, echoed)

    def _physical(self, device: Device, spec: ChannelSpec, raw: float) -> float | None:
        exponent = scale_exponent(
            spec.register, self.image.get((device.unit_id, spec.register.function), {})
        )
        return None if exponent is None else raw * spec.register.scale * 10.0**exponent

    def state_dict(self) -> dict[str, Any]:
        """Limits, mode settings and the write counts survive a restart; commands do not (the
        device reverts)."""
        return {
            device_id: {
                "limits": asdict(battery.limits),
                "settings": asdict(battery.settings),
                "writes": {
                    "total": battery.writes,
                    "by_register": dict(battery.writes_by_register),
                    "persisted": battery.persisted_writes,
                },
            }
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
            _restore_counts(battery, saved.get("writes"))

    async def release(self) -> None:
        """Give every battery ems steered back to its own logic (unload, HA stop)."""
        for device_id, battery in self.states.items():
            if battery.engaged:
                await self.release_one(self.devices[device_id])
                battery.engaged = False  # the device's own fallback, if any, does the rest

    async def release_one(self, device: Device) -> bool:
        """Drop the battery's command and write its release sequence, every step even when one
        fails: a register the device refuses must not keep the others forced. True when every
        step took; otherwise the battery stays engaged, and each cycle tries the release again."""
        battery = self.states[device.id]
        recipe = recipe_of(device)
        auto = Setpoint(mode=BatteryMode.AUTO, power_w=None)
        _, writes = desired_values(
            recipe, auto, charge_rating_w=1.0, discharge_rating_w=1.0, fallback_s=0
        )
        battery.command = BatteryCommand()
        released = True
        for key, value in writes.items():
            try:
                spec, raw = self._encoded(device, device.profile.channel(key), value)
                await self._write_confirmed(device, spec, raw, _readback(recipe, key))
            except (WriteFailedError, KeyError) as err:
                _LOGGER.warning("Could not return %s to auto: %s", device.name, err)
                released = False
                continue
            _count(battery, recipe, key, value)
        battery.engaged = not released
        return released


def _count(battery: BatteryState, recipe: ControlRecipe, key: str, value: float) -> None:
    """A write that took: what the register holds now, and the counts."""
    battery.last_written[key] = value
    battery.writes += 1
    battery.writes_by_register[key] = battery.writes_by_register.get(key, 0) + 1
    battery.persisted_writes += key in recipe.persisted


def _usable_values(state: DeviceState) -> dict[str, float]:
    return {
        key: float(reading.value)
        for key, reading in state.readings.items()
        if state.online and reading.usable and isinstance(reading.value, int | float)
    }


def _first(values: dict[str, float], keys: tuple[str, ...]) -> float | None:
    """The first of the channels that has a positive reading."""
    return next((values[key] for key in keys if (values.get(key) or 0.0) > 0), None)


def _readback(recipe: ControlRecipe, key: str) -> Readback | None:
    """Where a write reads back: the register itself unless the recipe says otherwise."""
    return recipe.readback.get(key, Readback(channel=key))


def _restore_counts(battery: BatteryState, saved: object) -> None:
    """Resume the write counts; anything unreadable starts them from 0."""
    if not isinstance(saved, dict):
        return
    by_register = saved.get("by_register")
    total, persisted = saved.get("total"), saved.get("persisted")
    if not (
        isinstance(total, int) and isinstance(persisted, int) and isinstance(by_register, dict)
    ):
        return
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in by_register.items()):
        return
    battery.writes, battery.persisted_writes = total, persisted
    battery.writes_by_register = dict(by_register)
