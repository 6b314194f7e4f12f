"""Fuzzing the battery actions on the whole simulated site, battery control allowed: every
call either succeeds, is refused by the action's schema (vol.Invalid, naming the field), or
raises a translated ServiceValidationError / HomeAssistantError; and a refused call changes
nothing: no register is written and the battery keeps its command."""

from __future__ import annotations

import json
import string
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import CONF_ALLOW_CONTROL, DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.control.battery import BatteryState
from custom_components.ems.engine.profiles.loader import BUILTIN_DIR
from custom_components.ems.services import SCHEMAS
from simulator import SiteSimulator

STRINGS: dict[str, Any] = json.loads(
    (BUILTIN_DIR.parents[1] / "translations" / "en.json").read_text(encoding="utf-8")
)
ACTIONS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
NUMBERS: st.SearchStrategy[Any] = (
    st.sampled_from(
        [
            0,
            1,
            50,
            99.9,
            100,
            100.1,
            3000,
            5000,
            90000,
            1_000_000,
            1_000_001,
            -1,
            -5,
            10**400,
            -(10**400),
            float("nan"),
            float("inf"),
            "3000",
            "lots",
            "1e400",
            True,
            None,
            [],
            {},
        ]
    )
    | st.floats(-2e6, 2e6)
    | st.integers(-(2**70), 2**70)
)
DURATIONS: st.SearchStrategy[Any] = st.sampled_from(
    [
        "01:00:00",
        "00:00:01",
        "00:00:00",
        "-00:01:00",
        "99999999999:00:00",
        "1 day",
        "soon",
        {"seconds": 1},
        {"hours": 2},
        {"days": 10**20},
        {"seconds": float("nan")},
        {"hours": 1e300},
        0,
        1,
        -1,
        3600,
        1e400,
        10**400,
        None,
        [],
        {},
    ]
)
_POWER = st.floats(0, 1_000_000) | st.integers(0, 100_000)
_SOC = st.floats(0, 100) | st.integers(0, 100)
# Per field: values a caller means (mostly) and values they get wrong.
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "power": (_POWER, NUMBERS),
    "target_soc": (_SOC, NUMBERS),
    "min_soc": (_SOC, NUMBERS),
    "duration": (
        st.sampled_from(["01:00:00", "00:30:00", {"seconds": 1}, {"hours": 2}, 60]),
        DURATIONS,
    ),
    "grid_setpoint": (st.floats(-1_000_000, 1_000_000), NUMBERS),
    "peak_power": (_POWER, NUMBERS),
    "recharge_power": (_POWER, NUMBERS),
    "charge_power_limit": (_POWER, NUMBERS),
    "discharge_power_limit": (_POWER, NUMBERS),
    "reserve_soc": (_SOC, NUMBERS),
    "max_soc": (_SOC, NUMBERS),
}
# Which device a call names: the battery, a meter, another integration's device, nonsense.
TARGETS = st.sampled_from(["battery"] * 12 + ["meter", "foreign", "unknown", "raw"])


@st.composite
def call(draw: st.DrawFn) -> tuple[str, Any, dict[str, Any]]:
    """An action, its target and fields: mostly its own with sensible values, sometimes not."""
    service = draw(st.sampled_from(sorted(SCHEMAS)))
    own = [str(key) for key in SCHEMAS[service].schema if str(key) != "device_id"]
    data: dict[str, Any] = {}
    for name in own:
        roll = draw(st.integers(0, 19))
        if roll < 17:
            data[name] = draw(FIELDS[name][0])
        elif roll < 19:
            data[name] = draw(FIELDS[name][1])
    if draw(st.integers(0, 9)) == 0:  # a field of another action, or one nobody has
        name = draw(st.sampled_from(sorted(FIELDS)) | st.text(max_size=5))
        data[name] = draw(FIELDS[name][0] if name in FIELDS else SCALARS)
    target = draw(TARGETS)
    return service, ("raw", draw(SCALARS)) if target == "raw" else target, data


@pytest.fixture
async def site(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> dict[str, Any]:
    """The loaded site with control allowed, and the device ids a call can name."""
    simulator.advance(2 * 3600)
    site_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(site_entry, options={CONF_ALLOW_CONTROL: True})
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    registry = dr.async_get(hass)
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    foreign = registry.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "thing")}
    )

    def device_id(unit: int) -> str:
        device = device_by_identifier(
            hass, (DOMAIN, f"{site_entry.entry_id}_unit{unit}"), site_entry.entry_id
        )
        assert device is not None
        return device.id

    coordinator: EmsCoordinator = site_entry.runtime_data.coordinator
    return {
        "coordinator": coordinator,
        "targets": {
            "battery": device_id(3),
            "meter": device_id(1),
            "foreign": foreign.id,
            "unknown": "0123456789abcdef",
        },
    }


@ACTIONS
@given(request=call())
async def test_any_call(
    hass: HomeAssistant,
    site: dict[str, Any],
    simulator: SiteSimulator,
    request: tuple[str, Any, dict[str, Any]],
) -> None:
    """Accepted with a finite response, or refused (by the schema, or with a translated error)
    and no write."""
    service, target, data = request
    coordinator: EmsCoordinator = site["coordinator"]
    # Every example starts from a battery nobody has commanded.
    coordinator.control.states["unit3"] = battery = BatteryState()
    device_id = target[1] if isinstance(target, tuple) else site["targets"][target]
    before = (battery.command, battery.limits, len(simulator.control_writes))
    try:
        response = await hass.services.async_call(
            DOMAIN, service, {**data, "device_id": device_id}, blocking=True, return_response=True
        )
    except vol.Invalid:
        # Home Assistant shows the schema's message, which names the field.
        _assert_unchanged(coordinator, simulator, before)
        return
    except HomeAssistantError as caught:
        refused = caught
    else:
        assert isinstance(response, dict)
        json.dumps(response, allow_nan=False)  # sent as JSON: no NaN or infinity
        return
    assert refused.translation_domain == DOMAIN, refused
    assert refused.translation_key in STRINGS["exceptions"], refused.translation_key
    message = STRINGS["exceptions"][refused.translation_key]["message"]
    assert set(refused.translation_placeholders or {}) >= _fields(message), message
    _assert_unchanged(coordinator, simulator, before)


def _assert_unchanged(
    coordinator: EmsCoordinator, simulator: SiteSimulator, before: tuple[Any, Any, int]
) -> None:
    battery_now = coordinator.control.states["unit3"]
    assert (battery_now.command, battery_now.limits) == before[:2]
    assert simulator.control_writes[before[2] :] == []


def _fields(message: str) -> set[str]:
    """The placeholders a translated message needs."""
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}
