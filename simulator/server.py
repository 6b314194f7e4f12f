"""Modbus TCP server for the simulated site, with ground truth and fault injection for tests.

Register words are computed from the model at request time. Requests for unit ids the site
does not serve, or for units switched offline, get no response at all (the client times out),
as behind a real TCP gateway; pymodbus is told to ignore missing units for that.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
import functools
import time
from typing import Any, NamedTuple, cast

from pymodbus import FramerType
from pymodbus.datastore import ModbusServerContext
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.transaction import TransactionManager

from simulator.devices import site_devices
from simulator.faults import ExceptionCode, Faults
from simulator.physics import BatteryMode, GroundTruth, SiteConfig, SiteModel, SiteState
from simulator.pymodbus_compat import NoSuchUnitError, silent_on_missing_units
from simulator.registers import DeviceMap, Function, Value

_REGISTER_FUNCTIONS: Mapping[int, Function] = {
    3: "holding",
    4: "input",
    6: "holding",
    16: "holding",
    22: "holding",
    23: "holding",
}
_CLOCK_TICK_S = 1.0


class ControlWrite(NamedTuple):
    """One accepted write of a control register, at simulated time."""

    time: datetime
    register: str  # the device_values key, e.g. "124.InWRte"
    value: Value


class RequestRejectedError(Exception):
    """A request the device answers with a Modbus exception code."""

    def __init__(self, code: int) -> None:
        """Carry the exception code for the response."""
        super().__init__(f"Modbus exception {code}")
        self.code = code


@dataclass(slots=True)
class RequestCount:
    """Modbus requests received, in total and per (unit id, function code)."""

    total: int = 0
    by_unit_function: Counter[tuple[int, int]] = field(default_factory=Counter)

    def record(self, unit_id: int, function_code: int) -> None:
        """Count one request."""
        self.total += 1
        self.by_unit_function[(unit_id, function_code)] += 1

    def reset(self) -> None:
        """Start counting from zero."""
        self.total = 0
        self.by_unit_function.clear()


class SiteClock:
    """Simulated time: moved by the test (speed None) or by the wall clock times speed."""

    def __init__(self, model: SiteModel, speed: float | None) -> None:
        """Start the wall-clock reference now."""
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._model = model
        self._wall_start = time.monotonic()

    def sync(self) -> None:
        """Catch the model up with the wall clock (no-op when the test drives time)."""
        if self.speed is None:
            return
        behind_s = (time.monotonic() - self._wall_start) * self.speed - self._model.elapsed_s
        if behind_s > 0:
            self._model.advance(behind_s)

    def advance(self, seconds: float) -> None:
        """Move simulated time forward; only when the test drives time."""
        if self.speed is not None:
            raise RuntimeError("this simulator follows the wall clock (speed is set)")
        self._model.advance(seconds)


class DeviceBank:
    """The devices' registers over one site model, bent by the faults. No sockets here."""

    def __init__(
        self,
        model: SiteModel,
        clock: SiteClock,
        faults: Faults,
        devices: Mapping[int, DeviceMap],
        control_writes: list[ControlWrite],
    ) -> None:
        """Serve `devices` from `model`; log accepted writes in `control_writes`."""
        self._model = model
        self._clock = clock
        self._faults = faults
        self._devices = devices
        self._control_writes = control_writes

    def values(self, unit_id: int) -> dict[str, Value]:
        """What the unit's registers serve now, at register resolution."""
        device = self._device(unit_id)
        offsets = self._faults.counter_offsets
        lifetime = device.read_values(self._state())
        values: dict[str, Value] = {}
        for register in device.registers:
            value = lifetime[register.key]
            offset = offsets.get((unit_id, register.key))
            if offset is not None and isinstance(value, float | int):
                value -= offset
            values[register.key] = register.quantize(value)
        return values

    def lifetime_value(self, unit_id: int, key: str) -> float:
        """A value as it would be without counter resets."""
        value = self._device(unit_id).read_values(self._state())[key]
        if not isinstance(value, float | int):
            raise TypeError(f"{key} is not a number")
        return value

    def read(self, unit_id: int, function_code: int, address: int, count: int) -> list[int]:
        """Words for a read request, or RequestRejectedError."""
        device = self._device(unit_id)
        function = _register_function(function_code)
        addresses = range(address, address + count)
        self._check(device, function, addresses)
        words = device.words(self.values(unit_id), function, addresses)
        return self._faults.overlay_garbage(unit_id, function, addresses, words)

    def write(self, unit_id: int, function_code: int, address: int, words: Sequence[int]) -> None:
        """Apply a write request to the device, or RequestRejectedError."""
        device = self._device(unit_id)
        function = _register_function(function_code)
        addresses = range(address, address + len(words))
        self._check(device, function, addresses)
        written = device.decode_write(addresses, words)
        if written is None or device.apply_writes is None:
            raise RequestRejectedError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        self._clock.sync()
        try:
            device.apply_writes(self._model, written)
        except ValueError as error:
            raise RequestRejectedError(ExceptionCode.ILLEGAL_DATA_VALUE) from error
        now = self._model.now
        self._control_writes.extend(ControlWrite(now, key, value) for key, value in written.items())

    def _check(self, device: DeviceMap, function: Function, addresses: range) -> None:
        code = self._faults.exception_code(device.unit_id, function, addresses)
        if code is None and not device.serves(function, addresses):
            code = ExceptionCode.ILLEGAL_DATA_ADDRESS
        if code is not None:
            raise RequestRejectedError(code)

    def _state(self) -> SiteState:
        self._clock.sync()
        return self._model.state()

    def _device(self, unit_id: int) -> DeviceMap:
        try:
            return self._devices[unit_id]
        except KeyError:
            raise ValueError(f"unit {unit_id} is not simulated") from None


def _register_function(function_code: int) -> Function:
    try:
        return _REGISTER_FUNCTIONS[function_code]
    except KeyError:
        raise RequestRejectedError(ExceptionCode.ILLEGAL_FUNCTION) from None


@dataclass(slots=True)
class _PendingRequest:
    exception_code: int | None = None


class RequestGate:
    """Decides whether, when and how requests are answered: refusal, offline units, delay,
    exception responses; counts requests.

    pymodbus handles each request in a task of its own, so the task identifies the request
    from the first datastore call until its response is sent. pymodbus up to 3.9 can only
    answer exception 2 from a datastore, so every exception is set on the request here and
    swapped into the response as it is sent, the same way on every version.
    """

    def __init__(self, faults: Faults, counts: RequestCount) -> None:
        """Start closed; the server opens the gate once it listens."""
        self.accepting = False
        self._faults = faults
        self._counts = counts
        self._in_flight: dict[asyncio.Task[Any], _PendingRequest] = {}

    async def admit(self, unit_id: int) -> _PendingRequest:
        """The current request's record; waits the injected delay on the first call."""
        self._require_answer(unit_id)
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Modbus requests are handled in tasks")
        pending = self._in_flight.get(task)
        if pending is None:
            pending = self._in_flight[task] = _PendingRequest()
            task.add_done_callback(self._forget)
            if self._faults.response_delay_s > 0:
                await asyncio.sleep(self._faults.response_delay_s)
                self._require_answer(unit_id)
        return pending

    def trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:  # noqa: FBT001 - pymodbus hook
        """Count requests coming in; turn responses of rejected requests into exceptions."""
        if not sending:
            self._counts.record(pdu.dev_id, pdu.function_code)
            return pdu
        task = asyncio.current_task()
        pending = self._in_flight.get(task) if task is not None else None
        if pending is None or pending.exception_code is None:
            return pdu
        response = ExceptionResponse(pdu.function_code & 0x7F, pending.exception_code)
        response.transaction_id = pdu.transaction_id
        response.dev_id = pdu.dev_id
        return response

    def trace_packet(self, sending: bool, data: bytes) -> bytes:  # noqa: FBT001 - pymodbus hook
        """Garble outgoing frames while the fault asks for it (header and payload alike)."""
        if not sending or self._faults.corrupt_frames_left <= 0:
            return data
        self._faults.corrupt_frames_left -= 1
        return bytes((byte ^ 0xA5) for byte in data)

    def trace_connect(self, connection: TransactionManager, connected: bool) -> None:  # noqa: FBT001
        """Drop a new connection at once while connections are refused."""
        if connected and self._faults.refusing:
            connection.close()

    async def close(self) -> None:
        """Stop answering and cancel requests still waiting, so no task outlives the server."""
        self.accepting = False
        waiting = list(self._in_flight)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

    def _require_answer(self, unit_id: int) -> None:
        if not self.accepting or unit_id in self._faults.offline_units:
            raise NoSuchUnitError(f"unit {unit_id} does not answer")

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._in_flight.pop(task, None)


class _UnitEndpoint:
    """One unit id, in the shape of a pymodbus per-device datastore context."""

    def __init__(self, unit_id: int, bank: DeviceBank, gate: RequestGate) -> None:
        self.unit_id = unit_id
        self._bank = bank
        self._gate = gate

    def validate(self, fc_as_hex: int, address: int, count: int = 1) -> bool:
        """Accept: async_getValues decides, as pymodbus from 3.10 never calls validate."""
        del fc_as_hex, address, count
        return True

    async def async_getValues(  # noqa: N802 - pymodbus datastore API
        self, fc_as_hex: int, address: int, count: int = 1
    ) -> list[int]:
        """Words for a read; a rejected read gets placeholder words the gate replaces."""
        pending = await self._gate.admit(self.unit_id)
        if pending.exception_code is None:
            try:
                words = self._bank.read(self.unit_id, fc_as_hex, address, count)
            except RequestRejectedError as rejection:
                pending.exception_code = rejection.code
            else:
                return words
        return [0] * count

    async def async_setValues(  # noqa: N802 - pymodbus datastore API
        self, fc_as_hex: int, address: int, values: Sequence[int | bool]
    ) -> None:
        """Apply a write unless the request is already rejected."""
        pending = await self._gate.admit(self.unit_id)
        if pending.exception_code is not None:
            return
        try:
            self._bank.write(self.unit_id, fc_as_hex, address, [int(value) for value in values])
        except RequestRejectedError as rejection:
            pending.exception_code = rejection.code


class _SiteServerContext(ModbusServerContext):
    """Routes requests to the unit endpoints; unknown units raise NoSuchUnitError (silence).

    Speaks both pymodbus datastore APIs: up to 3.11 the server fetches a per-unit context with
    `context[unit]`; from 3.12 it calls async_getValues/async_setValues with the unit id.
    """

    def __init__(self, endpoints: Mapping[int, _UnitEndpoint]) -> None:
        # The parent's constructor only fills a device dict whose layout changes between
        # versions (and converts it to SimDevices in 3.13); every lookup is overridden here.
        self._endpoints = dict(endpoints)
        # pymodbus 3.13 runs a context that lists SimDevices through its own simulator core.
        self.simdevices: list[Any] = []
        # pymodbus 3.16 serves a context without SimDevices only when it says it answers
        # requests itself (as its old simulator did), which this one does.
        self.old_simulator = True

    def __getitem__(self, unit_id: int) -> _UnitEndpoint:
        try:
            return self._endpoints[unit_id]
        except KeyError:
            raise NoSuchUnitError(f"unit {unit_id} is not simulated") from None

    def slaves(self) -> list[int]:
        """Served unit ids (pymodbus up to 3.9)."""
        return list(self._endpoints)

    def device_ids(self) -> list[int]:
        """Served unit ids (pymodbus from 3.10)."""
        return list(self._endpoints)

    async def async_getValues(  # noqa: N802 - pymodbus datastore API
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int]:
        """Read from one unit (pymodbus from 3.12)."""
        return await self[device_id].async_getValues(func_code, address, count)

    async def async_setValues(  # noqa: N802 - pymodbus datastore API
        self, device_id: int, func_code: int, address: int, values: Sequence[int | bool]
    ) -> None:
        """Write to one unit (pymodbus from 3.12)."""
        await self[device_id].async_setValues(func_code, address, values)


class _SiteModbusServer(ModbusTcpServer):
    """pymodbus TCP server whose connections report to the request gate."""

    def __init__(
        self,
        context: _SiteServerContext,
        address: tuple[str, int],
        gate: RequestGate,
        framer: FramerType,
    ) -> None:
        super().__init__(context, address=address, framer=framer, **silent_on_missing_units())
        self._gate = gate

    def callback_new_connection(self) -> TransactionManager:
        """Attach the gate's hooks to each connection.

        pymodbus up to 3.9 does not pass the server's trace hooks on to its connections, and
        refusing a connection needs to know which one it is, so they are attached here.
        """
        connection = cast(TransactionManager, super().callback_new_connection())  # type: ignore[no-untyped-call]
        connection.trace_pdu = self._gate.trace_pdu
        connection.trace_packet = self._gate.trace_packet
        connection.trace_connect = functools.partial(self._gate.trace_connect, connection)
        return connection


class SiteSimulator:
    """A simulated home energy site behind a Modbus TCP server.

    With speed None the simulated clock moves only through `advance()`; with a speed it runs
    at wall-clock time x speed. Started and stopped inside the caller's event loop; no threads.
    """

    def __init__(
        self,
        config: SiteConfig | None = None,
        *,
        speed: float | None = None,
        framer: FramerType = FramerType.SOCKET,
        extra_meters: int = 0,
        layout: str = "standard",
    ) -> None:
        """Build the site; `start()` opens the Modbus server.

        `framer=FramerType.RTU` serves RTU frames over TCP, as a serial-to-Ethernet converter
        does; a serial client reaches it through pyserial's `socket://` URL.
        `extra_meters` serves that many copies of the grid meter on unit ids 6, 7, … (see
        simulator.devices.site_devices). `layout` wires the site as a vendor does
        (simulator.devices.LAYOUTS).
        """
        self.config = config or SiteConfig()
        self._devices = site_devices(extra_meters, layout)
        self.framer = framer
        self.requests = RequestCount()
        # Accepted writes of control registers, oldest first; a test may clear it.
        self.control_writes: list[ControlWrite] = []
        self._model = SiteModel(self.config)
        self._clock = SiteClock(self._model, speed)
        self.faults = Faults(
            self._devices,
            lifetime_value=self._lifetime_value,
            drop_connections=self._drop_connections,
        )
        self._bank = DeviceBank(
            self._model, self._clock, self.faults, self._devices, self.control_writes
        )
        self._gate = RequestGate(self.faults, self.requests)
        self._server: _SiteModbusServer | None = None
        self._listener: asyncio.Server | None = None
        self._port = 0
        self._clock_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (kept across stop and start)."""
        if not self._port:
            raise RuntimeError("the simulator has not been started")
        return self._port

    @property
    def unit_ids(self) -> tuple[int, ...]:
        """The Modbus unit ids the site answers."""
        return tuple(self._devices)

    @property
    def truth(self) -> GroundTruth:
        """What really happens on the site now."""
        self._clock.sync()
        return self._model.truth()

    def device_values(self, unit_id: int) -> dict[str, Value]:
        """The values the unit's registers serve now, before encoding, at register resolution.

        Eastron meters: keys as in simulator.eastron. SunSpec devices: "<model>.<point>" with
        the scale factor applied, text as str and None where a point is not implemented (see
        simulator.sunspec).
        """
        return dict(self._bank.values(unit_id))

    def sunspec_models(self, unit_id: int) -> dict[int, str]:
        """Each SunSpec model the unit serves: the address of its ID register, and what the
        keys of its points start with in `device_values` ("203", "203@grid")."""
        return {
            register.address: register.key.removesuffix(".ID")
            for register in self._devices[unit_id].registers
            if register.key.endswith(".ID") and register.key != "end.ID"
        }

    def advance(self, seconds: float) -> None:
        """Move simulated time forward (only with speed None)."""
        self._clock.advance(seconds)

    def set_battery_command(self, mode: BatteryMode | str, power_w: float = 0.0) -> None:
        """Command the battery directly, as its model 124 registers would (see
        SiteModel.set_battery_command); not logged in control_writes."""
        self._clock.sync()
        self._model.set_battery_command(mode, power_w)

    def reset_request_count(self) -> None:
        """Count requests from zero."""
        self.requests.reset()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port; port 0 picks a free port the first time and reuses it after."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        port = port or self._port
        endpoints = {unit: _UnitEndpoint(unit, self._bank, self._gate) for unit in self._devices}
        server = _SiteModbusServer(
            _SiteServerContext(endpoints), (host, port), self._gate, self.framer
        )
        if not await server.listen():
            raise OSError(f"cannot listen on {host}:{port}")
        listener = server.transport
        if not isinstance(listener, asyncio.Server):
            server.close()
            raise TypeError("pymodbus did not listen on a TCP server socket")
        self._server, self._listener = server, listener
        self._port = int(listener.sockets[0].getsockname()[1])
        self._gate.accepting = True
        if self._clock.speed is not None:
            self._clock_task = asyncio.create_task(
                self._follow_wall_clock(), name="site simulator clock"
            )

    async def stop(self) -> None:
        """Close the server and every connection; leaves no task behind."""
        server, listener = self._server, self._listener
        if server is None or listener is None:
            return
        self._server = self._listener = None
        server.close()
        await self._gate.close()
        await listener.wait_closed()
        if self._clock_task is not None:
            self._clock_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._clock_task
            self._clock_task = None

    async def _follow_wall_clock(self) -> None:
        # Integrating between requests keeps an idle period from being caught up in one go.
        while True:
            await asyncio.sleep(_CLOCK_TICK_S)
            self._clock.sync()

    def _lifetime_value(self, unit_id: int, key: str) -> float:
        return self._bank.lifetime_value(unit_id, key)

    def _drop_connections(self) -> None:
        if self._server is not None:
            for connection in list(self._server.active_connections.values()):
                connection.close()
