"""A profile's control recipe is checked when it loads: every error names the file, the recipe
(sequence) and the field, and a good recipe gives the modes its device can run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from custom_components.ems.engine.control.commands import BatteryMode, Setpoint
from custom_components.ems.engine.control.recipe import (
    desired_values,
    offered_modes,
    why_not,
)
from custom_components.ems.engine.profiles.loader import ProfileError, parse_profile
from custom_components.ems.engine.recipes import (
    FallbackKind,
    PowerSign,
    SetpointKind,
    ValueSource,
)

# A battery steered by a work mode (persisted), a forced command, a signed power in kW and a
# watchdog in minutes: every kind of value a recipe takes.
_PROFILE = """
id: acme_battery
manufacturer: Acme
model: B1
device_type: battery
defaults: {function: holding, type: uint16}
channels:
  SOC: {address: 10, unit: "%"}
  ActivePower: {address: 11, type: int16, unit: W}
  MaxChargePower: {address: 12, unit: W}
  WorkMode: {address: 100, access: rw}
  Command: {address: 101, access: rw}
  Power: {address: 102, type: int16, scale: 0.01, unit: kW, access: rw}
  Watchdog: {address: 103, unit: min, access: rw}
  PowerRead: {address: 110, type: int16, scale: 0.01, unit: kW}
control:
  source: "Acme Modbus protocol V1.0; cross-checked against nothing (a test)"
  fallback: {kind: revert_timer, max_s: 3600}
  persisted: [WorkMode]
  readback:
    Power: {channel: PowerRead, tolerance: 0.01}
    Watchdog: none
  charge_rating: [MaxChargePower]
  discharge_rating: [MaxChargePower]
  sign: charge_positive
  sequences:
    auto:
      - {channel: Command, value: 0}
      - {channel: WorkMode, value: 0}
    hold:
      - {channel: WorkMode, value: 3}
      - {channel: Watchdog, value: fallback, resolution: 1}
      - {channel: Power, value: 0}
      - {channel: Command, value: 1, rearm: true}
    charge:
      - {channel: WorkMode, value: 3}
      - {channel: Watchdog, value: fallback, resolution: 1}
      - {channel: Power, value: signed_power}
      - {channel: Command, value: 1, rearm: true}
    discharge:
      - {channel: WorkMode, value: 3}
      - {channel: Watchdog, value: fallback, resolution: 1}
      - {channel: Power, value: signed_power}
      - {channel: Command, value: 1, rearm: true}
"""


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(_PROFILE)
    return document


def _error(document: dict[str, Any]) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        parse_profile(document, source="acme.yaml")
    return caught.value


def test_a_recipe_loads_with_its_profile() -> None:
    """Units come from the channels; sources, fallback, persisted and readback are data."""
    recipe = parse_profile(_document(), source="acme.yaml").control
    assert recipe is not None
    assert recipe.fallback.kind is FallbackKind.REVERT_TIMER
    assert recipe.sign is PowerSign.CHARGE_POSITIVE
    assert recipe.persisted == {"WorkMode"}
    assert recipe.readback["Watchdog"] is None
    (power,) = [s for s in recipe.sequences[SetpointKind.CHARGE] if s.channel == "Power"]
    assert (power.source, power.unit) == (ValueSource.SIGNED_POWER, "kW")
    assert offered_modes(recipe) == tuple(BatteryMode)


def test_values_in_the_registers_units_and_sign() -> None:
    """A 2.5 kW charge with charge-positive power is +2.5 kW; 90 s of watchdog is 2 minutes."""
    recipe = parse_profile(_document(), source="acme.yaml").control
    assert recipe is not None
    charge = Setpoint(mode=BatteryMode.FORCE_CHARGE, power_w=-2500.0)
    kind, values = desired_values(
        recipe, charge, charge_rating_w=5000.0, discharge_rating_w=5000.0, fallback_s=90
    )
    assert kind is SetpointKind.CHARGE
    assert values == {"WorkMode": 3, "Watchdog": 2, "Power": 2.5, "Command": 1}
    discharge = Setpoint(mode=BatteryMode.FORCE_DISCHARGE, power_w=1000.0)
    _, values = desired_values(
        recipe, discharge, charge_rating_w=5000.0, discharge_rating_w=5000.0, fallback_s=60
    )
    assert values["Power"] == -1.0
    with pytest.raises(ValueError, match="fallback_s"):
        desired_values(recipe, charge, charge_rating_w=1, discharge_rating_w=1, fallback_s=7200)


def _without(document: dict[str, Any], *kinds: str) -> dict[str, Any]:
    for kind in kinds:
        del document["control"]["sequences"][kind]
    return document


def test_modes_follow_the_sequences() -> None:
    """No discharge sequence: no force_discharge, no steering; no power: no steering."""
    recipe = parse_profile(_without(_document(), "discharge"), source="a.yaml").control
    assert recipe is not None
    assert offered_modes(recipe) == (BatteryMode.AUTO, BatteryMode.FORCE_CHARGE, BatteryMode.HOLD)
    assert why_not(recipe, BatteryMode.FORCE_DISCHARGE) == "no_discharge"
    assert why_not(recipe, BatteryMode.SELF_CONSUMPTION) == "no_power_setpoint"
    fixed = _document()
    for kind in ("charge", "discharge"):
        fixed["control"]["sequences"][kind][2] = {"channel": "Power", "value": 5}
    recipe = parse_profile(fixed, source="a.yaml").control
    assert recipe is not None
    assert why_not(recipe, BatteryMode.PEAK_SHAVING) == "no_power_setpoint"
    assert why_not(recipe, BatteryMode.FORCE_CHARGE) is None
    release_only = _without(_document(), "hold", "charge", "discharge")
    release_only["control"]["readback"] = {}
    recipe = parse_profile(release_only, source="a.yaml").control
    assert recipe is not None
    assert offered_modes(recipe) == (BatteryMode.AUTO,)
    assert why_not(recipe, BatteryMode.HOLD) == "no_hold"


def _edit(path: list[Any], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(_document())
    node: Any = document["control"]
    for part in path[:-1]:
        node = node[part]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "recipe", "field", "message"),
    [
        (["sequences", "charge", 2, "channel"], "Pwr", "charge", "2.channel", "no channel for"),
        (["sequences", "hold", 0, "channel"], "SOC", "hold", "0.channel", "does not mark rw"),
        (["sequences", "auto", 0, "value"], 70000, "auto", "0.value", "does not fit"),
        (["sequences", "auto", 0, "value"], 0.5, "auto", "0.value", "does not fit"),
        (["sequences", "auto", 0, "value"], "speed", "auto", "0.value", "neither a number"),
        (["sequences", "auto"], _DELETE, "auto", None, "release sequence"),
        (["sequences", "hold"], _DELETE, "hold", None, "policy holds"),
        (["sequences", "charge", 3, "rearm"], False, "charge", "rearm", "re-arms"),
        (["persisted"], ["WorkMode", "Command"], "hold", "rearm", "persisted"),
        (["persisted"], ["SOC"], "control", "persisted", "not written"),
        (["readback", "Power", "channel"], "Nowhere", "control", "readback", "no channel for"),
        (["fallback", "kind"], "none", "hold", "value", "fallback kind is none"),
        (["fallback", "kind"], "sometimes", "control", "fallback.kind", None),
        (["charge_rating"], ["Nothing"], "control", "charge_rating", "none of which"),
        (["source"], _DELETE, "control", "source", None),
    ],
)
def test_bad_recipes_name_the_recipe_and_the_field(
    path: list[Any], value: Any, recipe: str, field: str | None, message: str | None
) -> None:
    """Each problem is a ProfileError naming the file, the recipe and the field."""
    error = _error(_edit(path, value))
    assert (error.file, error.recipe, error.field) == ("acme.yaml", recipe, field)
    if message is not None:
        assert message in error.message
    assert "acme.yaml" in str(error)
    assert f"control recipe '{recipe}'" in str(error)


def test_a_recipe_that_is_no_mapping_is_refused() -> None:
    document = _document()
    document["control"] = ["auto"]
    error = _error(document)
    assert error.recipe == "control"
    assert "mapping" in error.message


def test_a_duration_needs_its_time_in_every_forced_sequence() -> None:
    """A device that runs a forced mode for a written duration must be told one."""
    document = _edit(["fallback", "kind"], "duration")
    del document["control"]["sequences"]["discharge"][1]
    error = _error(document)
    assert (error.recipe, error.field) == ("discharge", "value")
