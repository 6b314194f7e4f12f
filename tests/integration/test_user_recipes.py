"""A user's own profile steers a battery through its control recipe.

The user describes the simulated SunSpec battery (unit 3) in their own YAML, with a recipe
that can hold and charge but not discharge. ems offers exactly those modes, refuses the
others with a translated reason, charges the simulated battery as told, and releases it.
A broken recipe in another file is a repair, and the hub still loads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.engine.profiles.sunspec import model_definition
from simulator import SiteSimulator

from .conftest import device_subentry, run_cycles, start_site
from .user_profile_files import remove_profiles, write_profile

STORAGE_AT = 40070  # model 124's ID register on unit 3 (after the 66-register common model)
BATTERY_AT = STORAGE_AT + 2 + 24  # model 802's


def _offset(model_id: int, name: str) -> int:
    offset = 0
    for point in model_definition(model_id)["points"]:
        if point["name"] == name:
            return offset
        offset += int(point["size"])
    raise KeyError(name)


def _at(name: str, model: int = 124) -> int:
    return (STORAGE_AT if model == 124 else BATTERY_AT) + _offset(model, name)


# Addresses come from the SunSpec definition; the words are the user's.
USER_PROFILE = f"""
id: my_storage
manufacturer: Acme
model: Storage (my own map)
device_type: battery
defaults: {{function: holding, type: uint16}}
channels:
  SOC: {{address: {_at("SoC", 802)}, unit: "%", scale_register: {_at("SoC_SF", 802)}}}
  ActivePower: {{address: {_at("W", 802)}, type: int16, unit: W,
                scale_register: {_at("W_SF", 802)}}}
  MaxChargePower: {{address: {_at("WChaMax")}, unit: W, scale_register: {_at("WChaMax_SF")}}}
  Mode: {{address: {_at("StorCtl_Mod")}, access: rw}}
  ChargeRate: {{address: {_at("InWRte")}, type: int16, unit: "%", access: rw,
               scale_register: {_at("InOutWRte_SF")}}}
  DischargeRate: {{address: {_at("OutWRte")}, type: int16, unit: "%", access: rw,
                  scale_register: {_at("InOutWRte_SF")}}}
  Timer: {{address: {_at("InOutWRte_RvrtTms")}, unit: s, access: rw}}
control:
  source: "SunSpec model 124, written out by hand (a test)"
  fallback: {{kind: revert_timer, max_s: 600}}
  charge_rating: [MaxChargePower]
  sequences:
    auto:
      - {{channel: Timer, value: 0}}
      - {{channel: ChargeRate, value: 0}}
      - {{channel: DischargeRate, value: 0}}
      - {{channel: Mode, value: 0}}
    hold:
      - {{channel: Timer, value: fallback}}
      - {{channel: ChargeRate, value: 0, rearm: true}}
      - {{channel: DischargeRate, value: 0}}
      - {{channel: Mode, value: 3}}
    charge:
      - {{channel: Timer, value: fallback}}
      - {{channel: ChargeRate, value: power, resolution: 0.01, rearm: true}}
      - {{channel: DischargeRate, value: 0}}
      - {{channel: Mode, value: 1}}
"""
# A recipe that writes a register the profile does not have.
BROKEN_RECIPE = USER_PROFILE.replace("id: my_storage", "id: my_broken_storage").replace(
    "{channel: Mode, value: 1}", "{channel: Moed, value: 1}"
)


@pytest.fixture
async def user_entry(
    hass: HomeAssistant, simulator: SiteSimulator
) -> AsyncIterator[MockConfigEntry]:
    """The hub with the grid meter and the battery under the user's profile."""
    await hass.async_add_executor_job(write_profile, hass, "my_storage.yaml", USER_PROFILE)
    await hass.async_add_executor_job(write_profile, hass, "my_broken_storage.yaml", BROKEN_RECIPE)
    yield MockConfigEntry(
        domain=DOMAIN,
        version=2,
        minor_version=2,
        title="site",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid meter"),
            device_subentry(3, "my_storage", "battery", "Battery"),
        ],
    )
    await hass.async_add_executor_job(
        remove_profiles, hass, "my_storage.yaml", "my_broken_storage.yaml"
    )


def _battery(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    device = device_by_identifier(hass, (DOMAIN, f"{entry.entry_id}_unit3"), entry.entry_id)
    assert device is not None
    return device.id


async def test_a_user_recipe_offers_its_modes_and_steers_the_battery(
    hass: HomeAssistant,
    user_entry: MockConfigEntry,
    simulator: SiteSimulator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Auto, force charge and hold are offered; discharge is refused, saying why; a charge at
    2 kW charges the simulated battery at 2 kW; auto writes the release sequence."""
    coordinator = await start_site(hass, user_entry, simulator, hours=2)
    issue = issue_registry.async_get_issue(DOMAIN, "profile_error_my_broken_storage.yaml")
    assert issue is not None
    assert "control recipe 'charge'" in issue.translation_placeholders["problem"]
    assert "Moed" in issue.translation_placeholders["problem"]

    select = hass.states.get("select.battery_battery_mode")
    assert select is not None
    assert select.attributes["options"] == ["auto", "force_charge", "hold"]
    battery = _battery(hass, user_entry)
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "force_discharge", {"device_id": battery, "power": 1000}, blocking=True
        )
    assert refused.value.translation_key == "mode_not_supported_no_discharge"
    assert refused.value.translation_placeholders == {
        "device": "Battery",
        "mode": "force_discharge",
    }
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "self_consumption", {"device_id": battery}, blocking=True
        )
    assert refused.value.translation_key == "mode_not_supported_no_power_setpoint"

    await hass.services.async_call(
        DOMAIN, "force_charge", {"device_id": battery, "power": 2000}, blocking=True
    )
    await run_cycles(hass, coordinator, simulator, 2, seconds=10.0)
    assert simulator.truth.battery_power_w == pytest.approx(-2000, rel=0.05)

    await hass.services.async_call(DOMAIN, "auto", {"device_id": battery}, blocking=True)
    await run_cycles(hass, coordinator, simulator, 1, seconds=10.0)
    values = simulator.device_values(3)
    assert (values["124.StorCtl_Mod"], values["124.InWRte"], values["124.InOutWRte_RvrtTms"]) == (
        0,
        0,
        0,
    )
