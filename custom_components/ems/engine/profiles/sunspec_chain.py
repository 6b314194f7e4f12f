"""A SunSpec chain as the logical devices it describes.

One unit id often serves several devices. A SolarEdge inverter lays out its common and
inverter models, then a common and a meter model per meter wired to it; a hybrid inverter
(Fronius Gen24, SMA, Kostal) adds nameplate and settings (120-123), MPPT (160) and storage
(124, 802). Each inverter, each meter and each storage group becomes its own ems device with
its own role; they share the unit id, so the read plan still reads the chain in few requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model import DeviceProfile, DeviceType
from .sunspec import (
    BATTERY_MODEL,
    COMMON_MODEL,
    INVERTER_MODELS,
    METER_MODELS,
    STORAGE_CONTROL_MODEL,
    ModelInstance,
    build_profile,
    device_type_for,
)

_STORAGE_MODELS = frozenset({STORAGE_CONTROL_MODEL, BATTERY_MODEL})
# Nameplate, settings, status, controls (120-123), MPPT (160) and the DER models (7xx) describe
# the inverter they follow, even when storage models come between.
_INVERTER_DETAIL = frozenset({120, 121, 122, 123, 160, *range(700, 800)})


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainPart:
    """One logical device of a chain: its kind and the models that describe it."""

    device_type: DeviceType
    models: tuple[ModelInstance, ...]

    @property
    def lead(self) -> ModelInstance:
        """The model that makes the device what it is (the inverter, meter or storage model)."""
        return next((m for m in self.models if m.model_id != COMMON_MODEL), self.models[0])

    @property
    def label(self) -> str:
        """The models, as the flow shows them: "1+203"."""
        return "+".join(str(model.model_id) for model in self.models)


def _kind_of(model_id: int) -> DeviceType | None:
    """The kind of device a model starts, or `None` for a model that only describes one."""
    if model_id in INVERTER_MODELS:
        return DeviceType.INVERTER
    if model_id in METER_MODELS:
        return DeviceType.METER
    if model_id in _STORAGE_MODELS:
        return DeviceType.BATTERY
    return None


def _split(chain: Sequence[ModelInstance]) -> list[tuple[DeviceType, list[ModelInstance]]]:
    parts: list[tuple[DeviceType, list[ModelInstance]]] = []
    # A common model (and any detail model before the first device) belongs to the device
    # that follows it.
    waiting: list[ModelInstance] = []
    for model in chain:
        model_id = model.model_id
        if model_id == COMMON_MODEL:
            waiting = [m for m in waiting if m.model_id != COMMON_MODEL] + [model]
            continue
        kind = _kind_of(model_id)
        current = parts[-1] if parts else None
        if kind is None:
            target = current
            if model_id in _INVERTER_DETAIL:
                target = next((p for p in reversed(parts) if p[0] is DeviceType.INVERTER), current)
            models = waiting if target is None else target[1]
            # A repeated detail model is left out: its points would shadow the first one's.
            if all(m.model_id != model_id for m in models):
                models.append(model)
            continue
        joins_storage = (
            kind is DeviceType.BATTERY
            and current is not None
            and current[0] is DeviceType.BATTERY
            and all(m.model_id != model_id for m in current[1])
            and not waiting
        )
        if joins_storage and current is not None:
            current[1].append(model)
        else:
            parts.append((kind, [*waiting, model]))
            waiting = []
    return parts


def split_chain(chain: Sequence[ModelInstance]) -> list[ChainPart]:
    """The chain's logical devices, in chain order; the primary one (see `primary_index`)
    carries the chain's first common model, the unit's identity.

    A chain of no device model (a common model alone) stays one meter, as before the split.
    """
    if not chain:
        return []
    split = _split(chain)
    if not split:
        firsts: dict[int, ModelInstance] = {}
        for model in chain:
            firsts.setdefault(model.model_id, model)
        return [ChainPart(device_type=DeviceType.METER, models=tuple(firsts.values()))]
    primary = _primary_of([kind for kind, _ in split], device_type_for(list(chain)))
    first_common = next((m for m in chain if m.model_id == COMMON_MODEL), None)
    primary_models = split[primary][1]
    if first_common is not None and all(m.model_id != COMMON_MODEL for m in primary_models):
        for _, models in split:
            if first_common in models:
                models.remove(first_common)
        primary_models.insert(0, first_common)
    return [ChainPart(device_type=kind, models=tuple(models)) for kind, models in split]


def _primary_of(kinds: list[DeviceType], whole: DeviceType) -> int:
    return next((index for index, kind in enumerate(kinds) if kind is whole), 0)


def primary_index(parts: Sequence[ChainPart]) -> int:
    """Which part keeps the unit's own device id: the one of the kind the whole chain was
    before chains were split (battery over inverter over meter), so a device set up then keeps
    its Home Assistant device, its entities and its battery settings."""
    whole = device_type_for([model for part in parts for model in part.models])
    return _primary_of([part.device_type for part in parts], whole)


def part_profiles(parts: Sequence[ChainPart]) -> list[DeviceProfile]:
    """Each part's profile; an inverter is a hybrid when the unit also serves a battery."""
    with_storage = any(part.device_type is DeviceType.BATTERY for part in parts)
    return [build_profile(list(part.models), with_storage=with_storage) for part in parts]
