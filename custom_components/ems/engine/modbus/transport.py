"""The transport: one pymodbus client per hub, all traffic serialized, time-outs and
reconnects with exponential back-off up to 300 s, and errors sorted by kind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
import inspect
import logging
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ..model import RegisterFunction
from .plan import ReadBlock

_LOGGER = logging.getLogger(__name__)
# pymodbus 3.8 (Home Assistant 2025.4's) logs every exception response at ERROR as it decodes
# it. To ems one is an answer: "no such register" at a base without SunSpec, an identity
# register a device lacks, a register to quarantine; each is handled, and reported once by ems
# where the user must act.
_PYMODBUS_LOGGER = "pymodbus.logging"
_EXCEPTION_RESPONSE = "Exception response "
DEFAULT_TIMEOUT = 3.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0


class _ExceptionResponsesAtDebug(logging.Filter):
    """Pymodbus's own line for an exception response, at DEBUG instead of ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and record.getMessage().startswith(_EXCEPTION_RESPONSE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_exception_responses() -> None:
    """Install the filter once (the logger is pymodbus's, shared by every client)."""
    logger = logging.getLogger(_PYMODBUS_LOGGER)
    if not any(isinstance(f, _ExceptionResponsesAtDebug) for f in logger.filters):
        logger.addFilter(_ExceptionResponsesAtDebug())


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
        quiet_exception_responses()
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


type QuarantineKey = tuple[int, RegisterFunction, int]
