"""Which blocks a cycle reads: the fast group every cycle, everything every `slow_every`th.

Slow registers (identity, ratings) are kept between their reads, so that every cycle decodes
from a whole image. The plan is made again, with shorter requests, when the hub finds that
the gateway refuses long ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import logging
from typing import Final

from ..model import Device, PollGroup
from .plan import PlannedChannel, ReadBlock, RegisterImage, build_read_plan
from .poll import PlanHealth

_LOGGER = logging.getLogger(__name__)

# The slow group is read on the first cycle and then once in this many.
SLOW_POLL_EVERY: Final = 60


@dataclass(kw_only=True)
class ReadSchedule:
    """The read plans of one hub's devices, and the slow registers read last."""

    devices: Mapping[str, Device]
    hub_name: str
    max_read: int
    max_gap: int
    health: PlanHealth = field(default_factory=PlanHealth)
    slow_every: int = SLOW_POLL_EVERY
    cycle: int = 0
    fast_plan: list[ReadBlock] = field(init=False)
    full_plan: list[ReadBlock] = field(init=False)
    _planned_max_read: int = field(init=False)
    _slow_image: RegisterImage = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Plan once; the plan only changes when the devices or the gateway's limit do."""
        self._replan()

    @property
    def full_due(self) -> bool:
        """This cycle reads the slow group too."""
        return self.cycle % self.slow_every == 0

    def due(self) -> list[ReadBlock]:
        """The blocks this cycle reads."""
        return self.full_plan if self.full_due else self.fast_plan

    def image(self, read: RegisterImage) -> RegisterImage:
        """The whole image of this cycle: what was read, over the slow registers kept; then
        the next cycle is due (and planned again if the gateway's limit dropped)."""
        if self.full_due:
            self._keep_slow(read)
        self.cycle += 1
        if (self.health.max_read_cap or self.max_read) < self._planned_max_read:
            _LOGGER.info(
                "%s refuses long requests; reading at most %s registers at a time",
                self.hub_name,
                self.health.max_read_cap,
            )
            self._replan()
        image: RegisterImage = {key: dict(table) for key, table in self._slow_image.items()}
        for key, table in read.items():
            image.setdefault(key, {}).update(table)
        return image

    def _replan(self) -> None:
        # When the slow group is due, all channels are planned together: their blocks merge.
        max_read = min(self.max_read, self.health.max_read_cap or self.max_read)
        self.fast_plan = self._plan({PollGroup.FAST}, max_read)
        self.full_plan = self._plan({PollGroup.FAST, PollGroup.SLOW}, max_read)
        self._planned_max_read = max_read

    def _plan(self, groups: set[PollGroup], max_read: int) -> list[ReadBlock]:
        return build_read_plan(
            (
                PlannedChannel(unit_id=device.unit_id, spec=spec)
                for device in self.devices.values()
                for spec in device.profile.channels
                if spec.poll in groups
            ),
            max_read=max_read,
            max_gap=self.max_gap,
        )

    def _keep_slow(self, image: RegisterImage) -> None:
        """Remember the slow group's registers until it is read again.

        Only those: a fast register kept here could hide a failed read behind a stale value.
        """
        for device in self.devices.values():
            for spec in device.profile.channels:
                if spec.poll is not PollGroup.SLOW:
                    continue
                key = (device.unit_id, spec.register.function)
                table = image.get(key, {})
                addresses = range(
                    spec.register.address, spec.register.address + spec.register.count
                )
                kept = self._slow_image.setdefault(key, {})
                kept.update((a, table[a]) for a in addresses if a in table)
