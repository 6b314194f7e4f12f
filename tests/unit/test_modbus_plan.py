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
    unit: int, function: RegisterFunction, address: int, data_type: DataType, count: int = 1
) -> PlannedChannel:
    register = Register(
        function=function,
        address=address,
        data_type=data_type,
        length=count if data_type is DataType.STRING else None,
    )
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
# Strings as wide as SunSpec's (16 registers), beside a gateway that reads 4 at a time.
_with_strings = st.lists(
    st.one_of(
        st.builds(
            _channel,
            st.integers(1, 2),
            st.just(RegisterFunction.HOLDING),
            st.integers(0, 120),
            st.sampled_from(_TYPES),
        ),
        st.builds(
            _channel,
            st.integers(1, 2),
            st.just(RegisterFunction.HOLDING),
            st.integers(0, 120),
            st.just(DataType.STRING),
            st.integers(1, 32),
        ),
    ),
    min_size=1,
    max_size=25,
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


@settings(max_examples=200, deadline=None)
@given(channels=_with_strings, max_read=st.integers(1, 20), max_gap=st.integers(0, 8))
def test_no_request_is_longer_than_the_gateway_allows(
    channels: list[PlannedChannel], max_read: int, max_gap: int
) -> None:
    """Every request within `max_read`, every register of every channel read, and a channel
    that fits one request is read in one; only a wider one spans several (and a channel that
    overlaps a wider one may be cut with it)."""
    plan = build_read_plan(channels, max_read=max_read, max_gap=max_gap)
    wide = [p.spec.register for p in channels if p.spec.register.count > max_read]
    assert all(1 <= block.count <= max_read for block in plan)
    for planned in channels:
        register = planned.spec.register
        read = {
            address
            for block in plan
            if block.unit_id == planned.unit_id and block.function is register.function
            for address in range(block.start, block.end)
        }
        assert set(range(register.address, register.address + register.count)) <= read
        overlapped = any(
            other.address < register.address + register.count
            and register.address < other.address + other.count
            for other in wide
        )
        if register.count <= max_read and not overlapped:
            assert any(_covers(block, planned.unit_id, register) for block in plan)


def test_a_string_wider_than_a_request_is_read_in_pieces() -> None:
    """A 16-register string (SunSpec's Mn) through a gateway that reads 8: two requests."""
    plan = build_read_plan(
        [_channel(1, RegisterFunction.HOLDING, 40004, DataType.STRING, 16)], max_read=8
    )
    assert [(block.start, block.count) for block in plan] == [(40004, 8), (40012, 8)]


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
