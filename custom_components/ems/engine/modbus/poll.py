"""One pass over a read plan: a block that fails is bisected until the registers that fail
alone are found; those are quarantined and tried again later, so a bad register never takes
its neighbours down. What the hub learns (the gateway's request limit) is kept in `PlanHealth`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .plan import ReadBlock, RegisterImage
from .transport import ModbusErrorKind, ModbusHub, ModbusTransportError, QuarantineKey

ILLEGAL_DATA_VALUE = 3
QUARANTINE_RETRY_S = 300.0


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
