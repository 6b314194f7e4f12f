"""The devices' side of a cycle: decode → assess → normalize → counter guard → hold, then the
site's sums, flows and energies.

The cycle hands in the register image and gets back every device's state and the site's.
Everything that must survive a restart is in `state_dict()`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
import math
from typing import Any, Final, overload

from .cleaning import REASON_NOT_IMPLEMENTED, CounterGuard, CounterState, assess, check_rating
from .modbus.codec import decode_channel, scale_exponent, was_read
from .modbus.plan import RegisterImage
from .model import (
    ChannelKind,
    ChannelSpec,
    DataType,
    Device,
    DeviceRole,
    DeviceState,
    DeviceType,
    PollGroup,
    Quality,
    Reading,
    SiteState,
)
from .normalization import conversion_for, normalize
from .site.flows import split_flows
from .site.integration import DeviceEnergyAccumulator, SiteAccumulator
from .site.loads import LoadTracker
from .site.metered import MeteredTotals
from .site.powers import SiteInput, site_power

# Site values are sums of float readings; beyond these decimals they carry only noise.
POWER_DECIMALS: Final = 1
ENERGY_DECIMALS: Final = 6
# A held value older than this many cycles is stale: its entity shows no value.
STALE_AFTER_CYCLES: Final = 3
# Derived channels: (unit, kind) of what the pipeline computes where a device lacks it.
DERIVED_CHANNELS: Final[Mapping[str, tuple[str | None, ChannelKind]]] = {
    "EnergyGenerated": ("kWh", ChannelKind.COUNTER),
    "EnergyCharged": ("kWh", ChannelKind.COUNTER),
    "EnergyDischarged": ("kWh", ChannelKind.COUNTER),
    "EnergyImport": ("kWh", ChannelKind.COUNTER),
    "EnergyExport": ("kWh", ChannelKind.COUNTER),
    "Runtime": ("h", ChannelKind.COUNTER),
    "Status": (None, ChannelKind.STATE),
    "Demand": ("kW", ChannelKind.MEASUREMENT),
    "PeakDemand": ("kW", ChannelKind.MEASUREMENT),
}
_LOAD_KEYS: Final = ("Runtime", "Status", "Demand", "PeakDemand")
_INTEGER_BITS: Final = {
    DataType.UINT16: 16,
    DataType.UINT32: 32,
    DataType.UINT64: 64,
    DataType.INT16: 16,
    DataType.INT32: 32,
    DataType.INT64: 64,
}


def derived_keys(device: Device) -> tuple[str, ...]:
    """The channels the pipeline adds to a device because the device lacks them."""
    own = {spec.key for spec in device.profile.channels}
    keys: list[str] = []
    if device.role is DeviceRole.LOAD:
        keys.extend(key for key in _LOAD_KEYS if key not in own)
    probe = _site_input(device, {})
    keys.extend(key for key in _energy_keys(probe) if key not in own)
    return tuple(keys)


def _energy_keys(item: SiteInput) -> tuple[str, ...]:
    if item.device_type is DeviceType.INVERTER:
        return ("EnergyGenerated",)
    if item.device_type is DeviceType.BATTERY:
        return ("EnergyCharged", "EnergyDischarged")
    return ("EnergyImport", "EnergyExport")


def _site_input(
    device: Device, values: Mapping[str, float | None], battery_behind_w: float | None = 0.0
) -> SiteInput:
    return SiteInput(
        role=device.role,
        device_type=device.profile.device_type,
        readings=values,
        invert=device.invert_power,
        battery_behind_w=battery_behind_w,
    )


@dataclass(kw_only=True, slots=True)
class _Held:
    cycle: int
    reading: Reading


@dataclass(kw_only=True)
class SitePipeline:
    """Turns each cycle's register image into cleaned, normalized device and site states."""

    devices: Mapping[str, Device]
    cycle: int = 0
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)
    resets: list[tuple[str, str]] = field(default_factory=list)
    _held: dict[tuple[str, str], _Held] = field(default_factory=dict)
    _guards: dict[tuple[str, str], CounterGuard] = field(default_factory=dict)
    # Baselines read back at start; a guard takes its own when its channel is first read.
    _saved_counters: dict[tuple[str, str], CounterState] = field(default_factory=dict)
    _device_energy: dict[str, DeviceEnergyAccumulator] = field(default_factory=dict)
    _loads: dict[str, LoadTracker] = field(default_factory=dict)
    _site: SiteAccumulator = field(default_factory=SiteAccumulator)
    _metered: MeteredTotals = field(default_factory=MeteredTotals)
    # Devices swapped since the last cycle: their counters start new baselines in the next one.
    _replaced: set[str] = field(default_factory=set)

    def device_replaced(self, device_id: str) -> None:
        """Another device answers at this one's unit id: its counters continue the lifetime
        totals from their own level instead of being held back as a reset to confirm."""
        self._replaced.add(device_id)

    def process(
        self, image: RegisterImage, timestamp: datetime, month_key: str | None = None
    ) -> tuple[dict[str, DeviceState], SiteState]:
        """One cycle: every device's readings, whether it answered, and the site's sums."""
        self.cycle += 1
        self.resets = []
        epoch = timestamp.timestamp()
        states = {
            device.id: self._device_state(device, image, timestamp)
            for device in self.devices.values()
        }
        self._replaced.clear()
        values = {
            device_id: _values(state) if state.online else {} for device_id, state in states.items()
        }
        for device in self.devices.values():
            self._derive(device, states[device.id], values[device.id], timestamp, month_key)
        return states, self._site_state(values, epoch)

    # -- devices ---------------------------------------------------------------------------

    def _device_state(
        self, device: Device, image: RegisterImage, timestamp: datetime
    ) -> DeviceState:
        readings: dict[str, Reading] = {}
        answered = False
        for spec in device.profile.channels:
            read = was_read(spec, device.unit_id, image)
            answered |= read and spec.poll is PollGroup.FAST
            decoded = decode_channel(spec, device.unit_id, image)
            reading = normalize(
                assess(device.id, spec, decoded, was_read=read, timestamp=timestamp)
            )
            if spec.kind is ChannelKind.MEASUREMENT:
                reading = check_rating(reading, device.rated_power_kw)
            if spec.kind is ChannelKind.COUNTER and reading.usable:
                reading = self._guard(device, spec, reading, image)
            self._count(reading)
            readings[spec.key] = self._hold(reading)
        return DeviceState(online=answered, readings=readings)

    def _guard(
        self, device: Device, spec: ChannelSpec, reading: Reading, image: RegisterImage
    ) -> Reading:
        """Pass a counter through its guard: glitches rejected, resets continued."""
        key = (device.id, spec.key)
        guard = self._guards.get(key)
        if guard is None:
            guard = self._guards[key] = CounterGuard(
                max_power_kw=device.rated_power_kw,
                modulus=_modulus(spec, device.unit_id, image),
                state=self._saved_counters.pop(key, None),
            )
        assert isinstance(reading.value, float | int)  # noqa: S101 - usable counters are numbers
        verdict = guard.update(
            float(reading.value),
            reading.timestamp.timestamp(),
            new_meter=device.id in self._replaced,
        )
        if verdict.reset:
            self.resets.append(key)
        if verdict.value is None:
            return replace(reading, quality=Quality.REJECTED, reason=verdict.reason)
        return replace(reading, value=verdict.value)

    def _count(self, reading: Reading) -> None:
        if reading.quality is not Quality.REJECTED or not reading.reason:
            return
        # A point the device never implemented is a fact about the device, not bad data: only
        # a channel that had a value and then reads "not implemented" counts as rejected.
        never_had_a_value = (reading.device_id, reading.channel) not in self._held
        if reading.reason == REASON_NOT_IMPLEMENTED and never_had_a_value:
            return
        self.rejections[(reading.device_id, reading.reason)] += 1

    def _hold(self, reading: Reading) -> Reading:
        """Show the last usable value for a few cycles instead of a rejected or missing one."""
        key = (reading.device_id, reading.channel)
        if reading.usable:
            self._held[key] = _Held(cycle=self.cycle, reading=reading)
            return reading
        held = self._held.get(key)
        if held is not None and self.cycle - held.cycle < STALE_AFTER_CYCLES:
            return held.reading
        return reading

    # -- derived channels --------------------------------------------------------------------

    def _derive(
        self,
        device: Device,
        state: DeviceState,
        values: Mapping[str, float | None],
        timestamp: datetime,
        month_key: str | None,
    ) -> None:
        """Add what the device lacks: energy from power, and a load's runtime and demand."""
        missing = derived_keys(device)
        if not missing:
            return
        epoch = timestamp.timestamp()
        item = _site_input(device, values)
        energy = self._device_energy.setdefault(device.id, DeviceEnergyAccumulator())
        for key, result in energy.update(item, epoch).items():
            if key in missing:
                quality = Quality.ESTIMATED if result.estimated else Quality.OK
                state.readings[key] = _derived(device, key, result.total_kwh, quality, timestamp)
        if device.role is DeviceRole.LOAD:
            tracker = self._loads.setdefault(device.id, LoadTracker(device.on_threshold_w))
            load = tracker.update(item.raw_power_w, epoch, month_key)
            derived: dict[str, float | str | None] = {
                "Runtime": load.runtime_h,
                "Status": "on" if load.status_on else "off",
                "Demand": load.demand_kw,
                "PeakDemand": load.peak_demand_kw,
            }
            for key in _LOAD_KEYS:
                if key in missing:
                    state.readings[key] = _derived(device, key, derived[key], Quality.OK, timestamp)

    # -- the site ------------------------------------------------------------------------------

    def _site_state(
        self, values: Mapping[str, Mapping[str, float | None]], epoch: float
    ) -> SiteState:
        inputs = [
            _site_input(device, values[device.id], self._battery_behind(device, values))
            for device in self.devices.values()
        ]
        power = site_power(inputs)
        flows = split_flows(power)
        energies = self._site.update(power, flows, epoch)
        totals = self._metered.update(self.devices.values(), values, energies.totals())
        return SiteState(
            power_w={
                "grid": _tidy(power.grid_w, POWER_DECIMALS),
                "production": _tidy(power.production_w, POWER_DECIMALS),
                "battery": _tidy(power.battery_w, POWER_DECIMALS),
                "consumption": _tidy(power.consumption_w, POWER_DECIMALS),
            },
            flows_w={k: _tidy(v, POWER_DECIMALS) for k, v in flows.as_dict().items()}
            if flows
            else None,
            self_sufficiency_pct=_tidy(flows.self_sufficiency_pct, 2) if flows else None,
            self_consumption_pct=_tidy(flows.self_consumption_pct, 2) if flows else None,
            energy_kwh={k: _tidy(v, ENERGY_DECIMALS) for k, v in totals.items()},
            estimated=energies.estimated,
        )

    def _battery_behind(
        self, device: Device, values: Mapping[str, Mapping[str, float | None]]
    ) -> float | None:
        """The power (+ discharge) of the batteries at a hybrid inverter's unit id; 0 for any
        other device, None while one of them has no reading."""
        if not device.profile.hybrid:
            return 0.0
        batteries = [
            _site_input(other, values[other.id]).raw_power_w
            for other in self.devices.values()
            if other.unit_id == device.unit_id and other.profile.device_type is DeviceType.BATTERY
        ]
        if any(power is None for power in batteries):
            return None
        return sum(power for power in batteries if power is not None)

    # -- diagnostics and persistence -------------------------------------------------------

    @property
    def awaited_counters(self) -> frozenset[str]:
        """Site series whose meters fell silent: their counters will bring the gap's energy."""
        return frozenset(self._metered.waiting)

    def rejections_of(self, device_id: str) -> dict[str, int]:
        """Rejected readings of one device, by reason, since the hub started."""
        return {
            reason: count
            for (device, reason), count in sorted(self.rejections.items())
            if device == device_id
        }

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart: counter baselines, energy totals, load runtimes."""
        return {
            "rejections": [[d, r, n] for (d, r), n in self.rejections.items()],
            "counters": {
                **{f"{d}|{c}": state.as_dict() for (d, c), state in self._saved_counters.items()},
                **{f"{d}|{c}": guard.state.as_dict() for (d, c), guard in self._guards.items()},
            },
            "device_energy": {d: acc.as_dict() for d, acc in self._device_energy.items()},
            "loads": {d: tracker.as_dict() for d, tracker in self._loads.items()},
            "site": self._site.as_dict(),
            "metered": self._metered.as_dict(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Resume from `state_dict()`; anything unreadable starts afresh, never fatal."""
        self.rejections = Counter(
            {(str(d), str(r)): int(n) for d, r, n in _rows(data.get("rejections"))}
        )
        for key, saved in _mapping(data.get("counters")).items():
            device_id, _, channel = str(key).partition("|")
            if device_id in self.devices and isinstance(saved, Mapping):
                self._saved_counters[(device_id, channel)] = CounterState.from_dict(saved)
        for device_id, saved in _mapping(data.get("device_energy")).items():
            if device_id in self.devices:
                self._device_energy[device_id] = DeviceEnergyAccumulator.from_dict(saved)
        for device_id, saved in _mapping(data.get("loads")).items():
            if (device := self.devices.get(device_id)) is not None:
                self._loads[device_id] = LoadTracker.from_dict(saved, device.on_threshold_w)
        self._site = SiteAccumulator.from_dict(data.get("site"))
        self._metered = MeteredTotals.from_dict(data.get("metered"))


@overload
def _tidy(value: float, decimals: int) -> float: ...
@overload
def _tidy(value: None, decimals: int) -> None: ...
def _tidy(value: float | None, decimals: int) -> float | None:
    """Drop float noise (5.7e-14 W from a balance) that users would see in states."""
    return None if value is None else round(value, decimals) + 0.0


def _values(state: DeviceState) -> dict[str, float | None]:
    """Usable numeric readings of a device, as the site sums take them."""
    return {
        key: float(reading.value)
        if reading.usable and isinstance(reading.value, float | int)
        else None
        for key, reading in state.readings.items()
    }


def _derived(
    device: Device, key: str, value: float | str | None, quality: Quality, timestamp: datetime
) -> Reading:
    unit = DERIVED_CHANNELS[key][0]
    return Reading(
        device_id=device.id,
        channel=key,
        timestamp=timestamp,
        value=value,
        quality=quality if value is not None else Quality.MISSING,
        unit=unit,
    )


def _modulus(spec: ChannelSpec, unit_id: int, image: RegisterImage) -> float | None:
    """Where an integer counter register wraps, in canonical units; None for floats."""
    register = spec.register
    bits = _INTEGER_BITS.get(register.data_type)
    if bits is None:
        return None
    exponent = scale_exponent(register, image.get((unit_id, register.function), {}))
    if exponent is None:
        return None
    modulus = float(2**bits) * register.scale * 10.0**exponent
    converted = conversion_for(spec.unit).apply(modulus)
    return converted if math.isfinite(converted) and converted > 0 else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _rows(value: object) -> Iterable[tuple[object, object, Any]]:
    if not isinstance(value, list):
        return []
    return [
        (row[0], row[1], row[2])
        for row in value
        if isinstance(row, list) and len(row) == 3 and isinstance(row[2], int)
    ]
