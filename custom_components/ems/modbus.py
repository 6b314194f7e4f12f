"""The Modbus stage: a read plan, the decoding of register words, and a serialized transport.

Channels are read in as few requests as the gateway allows: neighbours are merged into blocks
of at most `max_read` registers across gaps of at most `max_gap`. What a block returns is kept
in a register image per unit and function, and every channel is decoded from that image.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
import inspect
import logging
import math
import struct
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from .model import ChannelSpec, DataType, DeviceProfile, Register, RegisterFunction, WordOrder
from .profiles.sunspec import END_OF_CHAIN, SUNSPEC_BASES, SUNSPEC_MARKER, ModelInstance

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_READ = 125
DEFAULT_MAX_GAP = 16
DEFAULT_TIMEOUT = 3.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
# A real chain has a handful of models; a device answering garbage must not loop forever.
_MAX_MODELS = 64

_STRUCT_FORMAT: dict[DataType, str] = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
# SunSpec defines scale factors from -10 to 10 and 0x8000 as "not implemented"; anything beyond
# is a garbled word, and 10**400 would not even be a float.
_SCALE_FACTOR_LIMIT = 10

type RegisterKey = tuple[int, RegisterFunction]
type RegisterImage = dict[RegisterKey, dict[int, int]]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReadBlock:
    """One request: a contiguous range of registers of one unit and function."""

    unit_id: int
    function: RegisterFunction
    start: int
    count: int

    @property
    def end(self) -> int:
        """The first register after the block."""
        return self.start + self.count


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannedChannel:
    """A channel to read on a given unit."""

    unit_id: int
    spec: ChannelSpec


def _spans(planned: PlannedChannel) -> Iterable[tuple[int, int]]:
    register = planned.spec.register
    yield register.address, register.count
    if register.scale_register is not None:
        yield register.scale_register, 1


def build_read_plan(
    channels: Iterable[PlannedChannel],
    *,
    max_read: int = DEFAULT_MAX_READ,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[ReadBlock]:
    """Group channels into the fewest blocks within the gateway's limits.

    Sorted by address, a greedy sweep that extends each block as far as the limits allow is
    minimal: any block that covers a later span also covers everything between.
    """
    if max_read < 1 or max_gap < 0:
        raise ValueError("max_read must be at least 1 and max_gap at least 0")
    spans: dict[RegisterKey, set[tuple[int, int]]] = {}
    for planned in channels:
        key = (planned.unit_id, planned.spec.register.function)
        spans.setdefault(key, set()).update(_spans(planned))
    blocks: list[ReadBlock] = []
    for (unit_id, function), group in sorted(spans.items()):
        blocks.extend(_sweep(unit_id, function, sorted(group), max_read, max_gap))
    return blocks


def _sweep(
    unit_id: int,
    function: RegisterFunction,
    spans: list[tuple[int, int]],
    max_read: int,
    max_gap: int,
) -> Iterable[ReadBlock]:
    start, end = spans[0][0], spans[0][0] + spans[0][1]
    for address, count in spans[1:]:
        new_end = max(end, address + count)
        if address - end <= max_gap and new_end - start <= max_read:
            end = new_end
            continue
        yield ReadBlock(unit_id=unit_id, function=function, start=start, count=end - start)
        start, end = address, address + count
    yield ReadBlock(unit_id=unit_id, function=function, start=start, count=end - start)


def _words_to_bytes(words: list[int], register: Register) -> bytes:
    if register.word_order is WordOrder.LITTLE:
        words = list(reversed(words))
    byteorder: Any = "big" if register.byte_order is WordOrder.BIG else "little"
    return b"".join(word.to_bytes(2, byteorder) for word in words)


def _bytes_to_words(raw: bytes, register: Register) -> list[int]:
    byteorder: Any = "big" if register.byte_order is WordOrder.BIG else "little"
    words = [int.from_bytes(raw[i : i + 2], byteorder) for i in range(0, len(raw), 2)]
    if register.word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def decode_words(register: Register, words: list[int]) -> float | str | None:
    """Decode raw words into a value before scaling; `None` for "not implemented"."""
    raw = _words_to_bytes(words, register)
    if register.data_type is DataType.STRING:
        return raw.replace(b"\x00", b" ").decode("ascii", errors="replace").strip() or None
    if int.from_bytes(raw, "big") in register.sentinels:
        return None
    value: float = struct.unpack(_STRUCT_FORMAT[register.data_type], raw)[0]
    if math.isnan(value) or math.isinf(value):
        return None
    return value


def encode_value(register: Register, value: float | str) -> list[int]:
    """Encode a value (already divided by its scale) into the words a device holds."""
    if register.data_type is DataType.STRING:
        text = str(value).encode("ascii")[: register.count * 2]
        return _bytes_to_words(text.ljust(register.count * 2, b"\x00"), register)
    number: float | int = value if isinstance(value, int) else float(value)
    if register.data_type not in (DataType.FLOAT32, DataType.FLOAT64):
        number = round(number)
    return _bytes_to_words(struct.pack(_STRUCT_FORMAT[register.data_type], number), register)


def was_read(spec: ChannelSpec, unit_id: int, image: RegisterImage) -> bool:
    """Whether every register the channel needs is in the image."""
    register = spec.register
    table = image.get((unit_id, register.function), {})
    needed = range(register.address, register.address + register.count)
    if any(address not in table for address in needed):
        return False
    return register.scale_register is None or register.scale_register in table


def decode_channel(spec: ChannelSpec, unit_id: int, image: RegisterImage) -> float | str | None:
    """Decode one channel from the register image; `None` when it was not read or is unset."""
    register = spec.register
    table = image.get((unit_id, register.function), {})
    words = [table.get(register.address + offset) for offset in range(register.count)]
    if any(word is None for word in words):
        return None
    value = decode_words(register, [word for word in words if word is not None])
    if value is None or isinstance(value, str):
        return value
    exponent = 0
    if register.scale_register is not None:
        raw_exponent = table.get(register.scale_register)
        if raw_exponent is None:
            return None
        exponent = struct.unpack(">h", raw_exponent.to_bytes(2, "big"))[0]
        if abs(exponent) > _SCALE_FACTOR_LIMIT:  # 0x8000 ("not implemented") included
            return None
    if register.scale == 1.0 and exponent == 0:
        return value
    scaled = value * register.scale * 10.0**exponent
    # A float64 near its limit times a scale overflows: that is no reading, not infinity.
    return scaled if math.isfinite(scaled) else None


class ModbusErrorKind(StrEnum):
    """Why a request failed; decides between reconnecting and bisecting."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    EXCEPTION_RESPONSE = "exception_response"


class ModbusTransportError(Exception):
    """A request that did not return registers."""

    def __init__(self, kind: ModbusErrorKind, detail: str, code: int | None = None) -> None:
        """Keep the kind so callers can react without parsing messages."""
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.code = code


class Transport(StrEnum):
    """How the hub is reached."""

    TCP = "tcp"
    RTU_OVER_TCP = "rtu_over_tcp"
    SERIAL = "serial"


@dataclass(kw_only=True, slots=True)
class HubSettings:
    """Where and how to reach a hub."""

    transport: Transport = Transport.TCP
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    timeout: float = DEFAULT_TIMEOUT


@cache
def unit_keyword(method: Callable[..., Any]) -> str:
    """The keyword a pymodbus request method takes for the unit id.

    pymodbus 3.8 and 3.9 say `slave=`; from 3.10 it is `device_id=`.
    """
    parameters = inspect.signature(method).parameters
    return "device_id" if "device_id" in parameters else "slave"


@dataclass(kw_only=True, slots=True)
class _Backoff:
    """Exponential back-off between reconnect attempts, capped at five minutes."""

    delay: float = 0.0
    next_attempt: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.next_attempt

    def failed(self, now: float) -> None:
        self.delay = min(BACKOFF_MAX, self.delay * 2 if self.delay else BACKOFF_FIRST)
        self.next_attempt = now + self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
        self.next_attempt = 0.0


@dataclass(kw_only=True)
class ModbusHub:
    """One connection to a gateway or device; every request on it is serialized."""

    settings: HubSettings
    clock: Callable[[], float]
    _client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _backoff: _Backoff = field(default_factory=_Backoff)
    requests: int = 0

    @property
    def connected(self) -> bool:
        """Whether the transport is open."""
        return self._client is not None and bool(self._client.connected)

    @property
    def retry_in(self) -> float:
        """Seconds until the next reconnect attempt is allowed."""
        return max(0.0, self._backoff.next_attempt - self.clock())

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # Reconnecting is ours to pace (back-off up to 300 s), so pymodbus must not do it too.
        common: dict[str, Any] = {"timeout": self.settings.timeout, "retries": 0}
        common["reconnect_delay"] = 0
        if self.settings.transport is Transport.SERIAL:
            return AsyncModbusSerialClient(
                self.settings.serial_port,
                framer=FramerType.RTU,
                baudrate=self.settings.baudrate,
                parity=self.settings.parity,
                stopbits=self.settings.stopbits,
                **common,
            )
        framer = FramerType.RTU if self.settings.transport is Transport.RTU_OVER_TCP else None
        return AsyncModbusTcpClient(
            self.settings.host,
            port=self.settings.port,
            framer=framer or FramerType.SOCKET,
            **common,
        )

    async def _ensure_connected(self) -> None:
        if self.connected:
            return
        if not self._backoff.ready(self.clock()):
            raise ModbusTransportError(
                ModbusErrorKind.CONNECTION, f"waiting {self.retry_in:.0f} s before reconnecting"
            )
        if self._client is None:
            self._client = self._new_client()
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as err:
            ok = False
            _LOGGER.debug("Connecting to %s failed: %s", self.describe(), err)
        if not ok:
            self._backoff.failed(self.clock())
            raise ModbusTransportError(
                ModbusErrorKind.CONNECTION, f"cannot reach {self.describe()}"
            )
        self._backoff.succeeded()

    def describe(self) -> str:
        """Where the hub is, for logs."""
        if self.settings.transport is Transport.SERIAL:
            return self.settings.serial_port
        return f"{self.settings.host}:{self.settings.port}"

    async def read(self, block: ReadBlock) -> list[int]:
        """Read one block; raises `ModbusTransportError` with the reason on failure."""
        async with self._lock:
            await self._ensure_connected()
            assert self._client is not None  # noqa: S101 - established just above
            method = (
                self._client.read_holding_registers
                if block.function is RegisterFunction.HOLDING
                else self._client.read_input_registers
            )
            response = await self._request(method, block.start, block.unit_id, count=block.count)
            registers: list[int] = list(response.registers)
        if len(registers) < block.count:
            raise ModbusTransportError(ModbusErrorKind.EXCEPTION_RESPONSE, "short response")
        return registers[: block.count]

    async def write(self, unit_id: int, address: int, words: list[int]) -> None:
        """Write registers with FC6 (one word) or FC16 (several)."""
        async with self._lock:
            await self._ensure_connected()
            assert self._client is not None  # noqa: S101 - established just above
            if len(words) == 1:
                await self._request(self._client.write_register, address, unit_id, value=words[0])
            else:
                await self._request(self._client.write_registers, address, unit_id, values=words)

    async def _request(
        self, method: Callable[..., Any], address: int, unit_id: int, **kwargs: Any
    ) -> Any:
        # Bound methods are new objects each time; their function is what can be cached.
        kwargs[unit_keyword(getattr(method, "__func__", method))] = unit_id
        self.requests += 1
        try:
            response = await method(address, **kwargs)
        except ModbusException as err:
            # pymodbus reports a time-out as a ModbusIOException and leaves the socket open; a
            # lost connection leaves it closed.
            kind = ModbusErrorKind.TIMEOUT if self.connected else ModbusErrorKind.CONNECTION
            if self._client is not None:
                # A late answer to a timed-out request could be taken for the answer to the
                # next one; a fresh connection cannot carry it.
                self._client.close()
            raise ModbusTransportError(kind, str(err)) from err
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise ModbusTransportError(
                ModbusErrorKind.EXCEPTION_RESPONSE, f"exception code {code}", code
            )
        return response

    async def close(self) -> None:
        """Close the connection; the next request opens it again."""
        async with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
QUARANTINE_RETRY_S = 300.0

type QuarantineKey = tuple[int, RegisterFunction, int]


@dataclass(kw_only=True, slots=True)
class PlanHealth:
    """What the hub learned about its devices: registers to avoid, and request size limits.

    A register that answers with an exception is quarantined and retried every few minutes,
    so that its neighbours keep updating. A gateway that refuses long requests (exception 3
    on a block that reads fine in halves) lowers the request size for the whole hub.
    """

    retry_after: float = QUARANTINE_RETRY_S
    quarantined: dict[QuarantineKey, float] = field(default_factory=dict)
    max_read_cap: int | None = None

    def release_due(self, now: float) -> None:
        """Let registers whose quarantine ran out be tried again."""
        for key in [key for key, until in self.quarantined.items() if until <= now]:
            del self.quarantined[key]

    def quarantine(self, block: ReadBlock, now: float) -> None:
        """Keep a single failing register out of the next reads."""
        self.quarantined[(block.unit_id, block.function, block.start)] = now + self.retry_after

    def split(self, block: ReadBlock) -> list[ReadBlock]:
        """The block without its quarantined registers, as contiguous pieces."""
        pieces: list[ReadBlock] = []
        start: int | None = None
        for address in range(block.start, block.end + 1):
            bad = address == block.end or (
                (block.unit_id, block.function, address) in self.quarantined
            )
            if bad and start is not None:
                pieces.append(_sub_block(block, start, address))
                start = None
            elif not bad and start is None:
                start = address
        return pieces


def _sub_block(block: ReadBlock, start: int, end: int) -> ReadBlock:
    return ReadBlock(unit_id=block.unit_id, function=block.function, start=start, count=end - start)


@dataclass(kw_only=True, slots=True)
class PollResult:
    """What one pass over the read plan produced."""

    image: RegisterImage
    failed_blocks: list[tuple[ReadBlock, ModbusTransportError]]
    requests: int


@dataclass(kw_only=True, slots=True)
class _Pass:
    hub: ModbusHub
    health: PlanHealth
    now: float
    image: RegisterImage = field(default_factory=dict)
    failed: list[tuple[ReadBlock, ModbusTransportError]] = field(default_factory=list)
    answered: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)
    # Units whose latest request timed out: one lost answer is retried in halves, a second
    # time-out in a row means the device went silent (it powered off mid-pass).
    timed_out: set[int] = field(default_factory=set)

    async def read(self, block: ReadBlock) -> None:
        if block.unit_id in self.silent:
            return
        try:
            words = await self.hub.read(block)
        except ModbusTransportError as err:
            await self._failed(block, err)
            return
        self.answered.add(block.unit_id)
        self.timed_out.discard(block.unit_id)
        table = self.image.setdefault((block.unit_id, block.function), {})
        table.update(zip(range(block.start, block.end), words, strict=True))

    async def _failed(self, block: ReadBlock, err: ModbusTransportError) -> None:
        if err.kind is ModbusErrorKind.CONNECTION:
            raise err
        if err.kind is ModbusErrorKind.TIMEOUT:
            if block.unit_id not in self.answered or block.unit_id in self.timed_out:
                # Nobody home: bisecting would only multiply the time-outs, and quarantine
                # every register of a device that merely went quiet.
                self.silent.add(block.unit_id)
                self.failed.append((block, err))
                return
            self.timed_out.add(block.unit_id)
        if block.count == 1:
            self.health.quarantine(block, self.now)
            self.failed.append((block, err))
            return
        half = block.count // 2
        halves = (_sub_block(block, block.start, block.start + half),
                  _sub_block(block, block.start + half, block.end))  # fmt: skip
        for part in halves:
            await self.read(part)
        if err.code == ILLEGAL_DATA_VALUE and all(self._stored(part) for part in halves):
            self.health.max_read_cap = min(self.health.max_read_cap or block.count, half)

    def _stored(self, block: ReadBlock) -> bool:
        table = self.image.get((block.unit_id, block.function), {})
        return block.start in table and block.end - 1 in table


async def read_plan(
    hub: ModbusHub,
    blocks: Iterable[ReadBlock],
    health: PlanHealth | None = None,
    now: float = 0.0,
) -> PollResult:
    """Read every block; a failing block is bisected down to the registers that fail.

    A lost connection ends the pass early: every further request would wait for its time-out.
    A unit that times out before answering anything, or twice in a row, is skipped for the
    rest of the pass.
    """
    health = health or PlanHealth()
    health.release_due(now)
    run = _Pass(hub=hub, health=health, now=now)
    before = hub.requests
    for block in blocks:
        try:
            for piece in health.split(block):
                await run.read(piece)
        except ModbusTransportError as err:
            run.failed.append((block, err))
            break
    return PollResult(image=run.image, failed_blocks=run.failed, requests=hub.requests - before)


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
    chain: list[ModelInstance] = []
    for _ in range(_MAX_MODELS):
        model_id, length = await hub.read(_holding(unit_id, address, 2))
        if model_id == END_OF_CHAIN:
            break
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
        if words is not None and decode_words(register, words) == profile.detect.value:
            return profile
    return None
