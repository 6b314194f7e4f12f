"""The read plan: a hub's channels merged into as few blocks as the gateway allows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model import ChannelSpec, RegisterFunction

DEFAULT_MAX_READ = 125
DEFAULT_MAX_GAP = 16

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
    minimal: any block that covers a later span also covers everything between. A channel
    wider than `max_read` is the one that spans several requests.
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
    start: int | None = None
    end = 0
    for first, width in spans:
        address, count = first, width
        new_end = max(end, address + count)
        if start is not None and address - end <= max_gap and new_end - start <= max_read:
            end = new_end
            continue
        if start is not None:
            yield ReadBlock(unit_id=unit_id, function=function, start=start, count=end - start)
        # A channel wider than the gateway allows (a long string) is read in pieces; its last
        # piece may share a request with what follows.
        while count > max_read:
            yield ReadBlock(unit_id=unit_id, function=function, start=address, count=max_read)
            address, count = address + max_read, count - max_read
        start, end = address, address + count
    if start is not None:
        yield ReadBlock(unit_id=unit_id, function=function, start=start, count=end - start)
