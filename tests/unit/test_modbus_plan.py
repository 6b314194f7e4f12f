"""The read plan: every channel covered, limits respected, and no plan with fewer requests."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ems.engine.modbus.plan import PlannedChannel, ReadBlock, build_read_plan
from custom_components.ems.engine.model import (
    ChannelKind,
    ChannelSpec,
    DataType,
    Register,
    RegisterFunction,
)

_TYPES = [DataType.UINT16, DataType.FLOAT32, DataType.UINT64]


def _channel(
    unit: int, function: RegisterFunction, address: int, data_type: DataType
) -> PlannedChannel:
    register = Register(function=function, address=address, data_type=data_type)
    spec = ChannelSpec(
        key=f"c{address}", unit=None, kind=ChannelKind.MEASUREMENT, register=register
    )
    return PlannedChannel(unit_id=unit, spec=spec)


_channels = st.lists(
    st.builds(
        _channel,
        st.integers(1, 3),
        st.sampled_from(list(RegisterFunction)),
        st.integers(0, 400),
        st.sampled_from(_TYPES),
    ),
    min_size=1,
    max_size=40,
)


def _minimum_blocks(spans: list[tuple[int, int]], max_read: int, max_gap: int) -> int:
    """Exhaustive optimum over every split of the sorted spans into consecutive groups."""
    spans = sorted(set(spans))
    best = [0] + [len(spans) + 1] * len(spans)
    for last in range(1, len(spans) + 1):
        for first in range(last, 0, -1):
            group = spans[first - 1 : last]
            if _feasible(group, max_read, max_gap):
                best[last] = min(best[last], best[first - 1] + 1)
    return best[-1]


def _feasible(group: list[tuple[int, int]], max_read: int, max_gap: int) -> bool:
    start, end = group[0][0], group[0][0] + group[0][1]
    for address, count in group[1:]:
        if address - end > max_gap:
            return False
        end = max(end, address + count)
    return end - start <= max_read


@settings(max_examples=200, deadline=None)
@given(channels=_channels, max_read=st.integers(4, 125), max_gap=st.integers(0, 20))
def test_plan_is_minimal_and_covers_everything(
    channels: list[PlannedChannel], max_read: int, max_gap: int
) -> None:
    """Fewest requests under the limits, each channel inside one block."""
    plan = build_read_plan(channels, max_read=max_read, max_gap=max_gap)
    assert all(block.count <= max_read for block in plan)
    for planned in channels:
        register = planned.spec.register
        assert any(_covers(block, planned.unit_id, register) for block in plan)
    groups: dict[tuple[int, RegisterFunction], list[tuple[int, int]]] = {}
    for planned in channels:
        register = planned.spec.register
        groups.setdefault((planned.unit_id, register.function), []).append(
            (register.address, register.count)
        )
    expected = sum(_minimum_blocks(spans, max_read, max_gap) for spans in groups.values())
    assert len(plan) == expected


def _covers(block: ReadBlock, unit: int, register: Register) -> bool:
    return (
        block.unit_id == unit
        and block.function is register.function
        and block.start <= register.address
        and register.address + register.count <= block.end
    )


def test_sdm630_fast_channels_fit_few_requests() -> None:
    """The whole SDM630 fast set (43 values) needs only a handful of requests."""
    from custom_components.ems.engine.model import PollGroup
    from custom_components.ems.engine.profiles.loader import builtin_profiles

    profile = builtin_profiles()["eastron_sdm630"]
    fast = [PlannedChannel(unit_id=1, spec=s) for s in profile.channels if s.poll is PollGroup.FAST]
    plan = build_read_plan(fast)
    assert len(fast) > 35
    assert len(plan) == 4
    assert build_read_plan(fast, max_read=32, max_gap=16) == build_read_plan(
        fast, max_read=32, max_gap=16
    )


def test_invalid_limits_are_refused() -> None:
    """A zero-register limit is a configuration error, not an endless loop."""
    with pytest.raises(ValueError, match="max_read"):
        build_read_plan([], max_read=0)
