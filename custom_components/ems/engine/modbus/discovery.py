"""What answers at a unit id: the SunSpec model chain (after the `SunS` marker at 40000, 0
or 50000), or a profile whose detection registers match.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import LAST_REGISTER, DeviceProfile, RegisterFunction
from ..profiles.sunspec import END_OF_CHAIN, SUNSPEC_BASES, SUNSPEC_MARKER, ModelInstance
from .codec import decode_words
from .plan import ReadBlock
from .transport import ModbusErrorKind, ModbusHub, ModbusTransportError

# A real chain has a handful of models; a device answering garbage must not loop forever.
_MAX_MODELS = 64


async def discover_sunspec(hub: ModbusHub, unit_id: int) -> list[ModelInstance]:
    """Find the `SunS` marker at the known bases and walk the model chain behind it.

    Returns an empty list when the device has no SunSpec map. A silent device raises, so the
    caller can tell "not SunSpec" from "nobody there".
    """
    for base in SUNSPEC_BASES:
        try:
            marker = await hub.read(_holding(unit_id, base, 2))
        except ModbusTransportError as err:
            if err.kind is not ModbusErrorKind.EXCEPTION_RESPONSE:
                raise
            continue
        if tuple(marker) == SUNSPEC_MARKER:
            return await _walk_chain(hub, unit_id, base + 2)
    return []


async def _walk_chain(hub: ModbusHub, unit_id: int, address: int) -> list[ModelInstance]:
    """The models up to the end marker. A header the device refuses, or one that would lie
    past the last Modbus register, ends the chain too: the models before it were served, and
    are a usable device. A model's length is cut where the register space ends."""
    chain: list[ModelInstance] = []
    for _ in range(_MAX_MODELS):
        if address + 1 > LAST_REGISTER:
            break
        try:
            model_id, length = await hub.read(_holding(unit_id, address, 2))
        except ModbusTransportError as err:
            if err.kind is not ModbusErrorKind.EXCEPTION_RESPONSE:
                raise
            break
        if model_id == END_OF_CHAIN:
            break
        length = min(length, LAST_REGISTER - address - 1)
        chain.append(ModelInstance(model_id=model_id, address=address, length=length))
        address += 2 + length
    return chain


def _holding(unit_id: int, start: int, count: int) -> ReadBlock:
    return ReadBlock(unit_id=unit_id, function=RegisterFunction.HOLDING, start=start, count=count)


async def detect_profile(
    hub: ModbusHub, unit_id: int, profiles: Iterable[DeviceProfile]
) -> DeviceProfile | None:
    """The first profile whose identifying register holds its expected value."""
    answers: dict[tuple[RegisterFunction, int, int], list[int] | None] = {}
    for profile in profiles:
        if profile.detect is None:
            continue
        register = profile.detect.register
        key = (register.function, register.address, register.count)
        if key not in answers:
            block = ReadBlock(unit_id=unit_id, function=key[0], start=key[1], count=key[2])
            try:
                answers[key] = await hub.read(block)
            except ModbusTransportError as err:
                if err.kind is not ModbusErrorKind.EXCEPTION_RESPONSE:
                    raise
                answers[key] = None
        words = answers[key]
        if words is not None and profile.detect.matches(decode_words(register, words)):
            return profile
    return None
