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
