"""Failure modes a test can inject into the simulated devices and their gateway."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from simulator.registers import DeviceMap, Function


class ExceptionCode(IntEnum):
    """Modbus exception codes the simulated devices and gateway answer with."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3
    DEVICE_FAILURE = 4


@dataclass(slots=True)
class _Garbage:
    words: tuple[int, ...]
    reads_left: int | None  # None: until cleared


class Faults:
    """Switchable faults, reachable as `sim.faults`; `clear()` undoes every one of them.

    Units that are switched offline, and unit ids the site does not serve, give no response at
    all: the client times out, as behind a real TCP gateway whose serial device is silent.
    """

    def __init__(
        self,
        devices: Mapping[int, DeviceMap],
        *,
        lifetime_value: Callable[[int, str], float],
        drop_connections: Callable[[], None],
    ) -> None:
        """Bind to the devices; the callbacks read a counter and close open connections."""
        self._devices = devices
        self._lifetime_value = lifetime_value
        self._drop_connections = drop_connections
        self.refusing = False
        self.response_delay_s = 0.0
        self.register_limit: int | None = None
        self.offline_units: set[int] = set()
        self.corrupt_frames_left = 0
        self.counter_offsets: dict[tuple[int, str], float] = {}
        self._exceptions: dict[tuple[int, Function, int], tuple[range, int]] = {}
        self._garbage: dict[tuple[int, Function, int], _Garbage] = {}

    def refuse_connections(self, on: bool) -> None:  # noqa: FBT001 - reads as a switch
        """Close every open connection and each new one at once: the device is unreachable."""
        self.refusing = on
        if on:
            self._drop_connections()

    def corrupt_frames(self, count: int) -> None:
        """Send the next `count` responses as noise of the same length: a garbled frame."""
        if count < 0:
            raise ValueError("a frame count cannot be negative")
        self.corrupt_frames_left = count

    def delay(self, seconds: float) -> None:
        """Delay every response by `seconds` (0 for none)."""
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        self.response_delay_s = seconds

    def exception(
        self,
        unit_id: int,
        function: Function,
        address: int,
        code: int = ExceptionCode.ILLEGAL_DATA_ADDRESS,
    ) -> None:
        """Answer any request touching the register at `address` with Modbus exception `code`."""
        if not 1 <= code <= 0xFF:
            raise ValueError("a Modbus exception code is 1..255")
        span = self._device(unit_id).span(function, address)
        self._exceptions[(unit_id, function, address)] = (span, code)

    def garbage(
        self,
        unit_id: int,
        function: Function,
        address: int,
        words: Sequence[int],
        count: int | None = None,
    ) -> None:
        """Serve `words` from `address` on instead of the true ones, for `count` reads or until
        cleared."""
        self._device(unit_id)
        if not words or any(not 0 <= word <= 0xFFFF for word in words):
            raise ValueError("garbage is one or more 16-bit words")
        if count is not None and count < 1:
            raise ValueError("count is a number of reads, at least 1")
        self._garbage[(unit_id, function, address)] = _Garbage(tuple(words), count)

    def reset_counter(self, unit_id: int, key: str) -> None:
        """Restart a meter's energy counter from 0, as a real meter reset does.

        The ground truth keeps the lifetime total; only what the device serves restarts.
        """
        if not self._device(unit_id).register(key).counter:
            raise ValueError(f"{key} is not an energy counter")
        self.counter_offsets[(unit_id, key)] = self._lifetime_value(unit_id, key)

    def max_registers(self, n: int | None) -> None:
        """Act as a weak gateway: requests for more than `n` registers get exception 3."""
        if n is not None and n < 1:
            raise ValueError("a gateway passes at least one register")
        self.register_limit = n

    def offline(self, unit_id: int, on: bool) -> None:  # noqa: FBT001 - reads as a switch
        """Make one unit id stop answering while the others keep answering."""
        self._device(unit_id)
        if on:
            self.offline_units.add(unit_id)
        else:
            self.offline_units.discard(unit_id)

    def clear(self) -> None:
        """Undo every fault, counter resets included (the meters show lifetime totals again)."""
        self.refusing = False
        self.response_delay_s = 0.0
        self.register_limit = None
        self.offline_units.clear()
        self.corrupt_frames_left = 0
        self.counter_offsets.clear()
        self._exceptions.clear()
        self._garbage.clear()

    def exception_code(self, unit_id: int, function: Function, addresses: range) -> int | None:
        """The exception a request for `addresses` must get, if any."""
        if self.register_limit is not None and len(addresses) > self.register_limit:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        for (unit, fault_function, _), (span, code) in self._exceptions.items():
            if unit == unit_id and fault_function == function and _overlap(span, addresses):
                return code
        return None

    def overlay_garbage(
        self, unit_id: int, function: Function, addresses: range, words: list[int]
    ) -> list[int]:
        """Replace the true words by injected garbage, counting the read against it."""
        for key, garbage in list(self._garbage.items()):
            unit, fault_function, start = key
            span = range(start, start + len(garbage.words))
            if unit != unit_id or fault_function != function or not _overlap(span, addresses):
                continue
            for address, word in zip(span, garbage.words, strict=True):
                if address in addresses:
                    words[address - addresses.start] = word
            if garbage.reads_left is not None:
                garbage.reads_left -= 1
                if garbage.reads_left == 0:
                    del self._garbage[key]
        return words

    def _device(self, unit_id: int) -> DeviceMap:
        try:
            return self._devices[unit_id]
        except KeyError:
            raise ValueError(f"unit {unit_id} is not simulated") from None


def _overlap(first: range, second: range) -> bool:
    return first.start < second.stop and second.start < first.stop
