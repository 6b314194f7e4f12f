"""A profile's `control:` section: read with voluptuous, then checked against the profile's
channels, so that a recipe that could not be carried out never loads.

A recipe must name channels the profile has, write only channels the profile marks `rw`, give
values that fit their registers, carry a release (`auto`) sequence, and keep the device's
fallback armed: with a revert timer or a duration, each forced sequence writes the time and
marks what re-arms it. Errors are `RecipeError`s naming the sequence and the field; the loader
adds the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol

from ..model import Access, ChannelSpec, DataType
from ..recipes import (
    ControlRecipe,
    Fallback,
    FallbackKind,
    PowerSign,
    Readback,
    SetpointKind,
    ValueSource,
    WriteStep,
)

_INTEGER_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
_FORCED = (SetpointKind.HOLD, SetpointKind.CHARGE, SetpointKind.DISCHARGE)


class RecipeError(Exception):
    """A control recipe that cannot be used: where (sequence, field) and why."""

    def __init__(self, recipe: str | None, field: str | None, message: str) -> None:
        """`recipe` is the sequence ("charge") or None for the recipe as a whole."""
        super().__init__(message)
        self.recipe = recipe
        self.field = field
        self.message = message


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("is not a number")
    return float(value)


def _step_value(value: Any) -> float | ValueSource:
    if isinstance(value, str):
        try:
            return ValueSource(value)
        except ValueError:
            names = ", ".join(source.value for source in ValueSource)
            raise vol.Invalid(f"is neither a number nor one of {names}") from None
    return _number(value)


_CHANNEL_NAME = vol.All(str, vol.Length(min=1))
_STEP = vol.Schema(
    {
        vol.Required("channel"): _CHANNEL_NAME,
        vol.Required("value"): _step_value,
        vol.Optional("resolution"): vol.All(_number, vol.Range(min=0, min_included=False)),
        vol.Optional("rearm", default=False): bool,
    }
)
_READBACK = vol.Any(
    vol.All(str, vol.In(["none"], msg="is 'none' or a mapping with channel and tolerance")),
    vol.Schema(
        {
            vol.Required("channel"): _CHANNEL_NAME,
            vol.Optional("tolerance", default=0.0): vol.All(_number, vol.Range(min=0)),
        }
    ),
)
_SEQUENCES = {
    vol.Optional(kind.value): vol.All([_STEP], vol.Length(min=1)) for kind in SetpointKind
}
RECIPE_SCHEMA = vol.Schema(
    {
        vol.Required("source"): vol.All(str, vol.Length(min=1)),
        vol.Required("fallback"): vol.Schema(
            {
                vol.Required("kind"): vol.All(str, vol.Coerce(FallbackKind)),
                vol.Optional("max_s", default=0): vol.All(int, vol.Range(min=0)),
                vol.Optional("window_s", default=0): vol.All(int, vol.Range(min=0)),
            }
        ),
        vol.Required("sequences"): vol.Schema(_SEQUENCES),
        vol.Optional("persisted", default=list): [_CHANNEL_NAME],
        vol.Optional("readback", default=dict): {_CHANNEL_NAME: _READBACK},
        vol.Optional("charge_rating", default=list): [_CHANNEL_NAME],
        vol.Optional("discharge_rating", default=list): [_CHANNEL_NAME],
        vol.Optional("sign", default=PowerSign.DISCHARGE_POSITIVE.value): vol.All(
            str, vol.Coerce(PowerSign)
        ),
        vol.Optional("charge_from_grid", default=True): bool,
    }
)


def parse_recipe(raw: Any, channels: Mapping[str, ChannelSpec]) -> ControlRecipe:
    """A checked recipe, or RecipeError."""
    if not isinstance(raw, dict):
        raise RecipeError(None, None, "must be a mapping with source, fallback and sequences")
    try:
        document = RECIPE_SCHEMA(raw)
    except vol.Invalid as err:
        raise _located(err) from err
    fallback = Fallback(
        kind=document["fallback"]["kind"],
        max_s=document["fallback"]["max_s"],
        window_s=document["fallback"]["window_s"],
    )
    sequences = {
        SetpointKind(kind): tuple(
            _step(kind, index, raw_step, channels) for index, raw_step in enumerate(steps)
        )
        for kind, steps in document["sequences"].items()
    }
    recipe = ControlRecipe(
        source=document["source"],
        sequences=sequences,
        fallback=fallback,
        persisted=frozenset(document["persisted"]),
        readback={
            key: None if value == "none" else Readback(**value)
            for key, value in document["readback"].items()
        },
        charge_rating=tuple(document["charge_rating"]),
        discharge_rating=tuple(document["discharge_rating"]),
        sign=document["sign"],
        charge_from_grid=document["charge_from_grid"],
    )
    _check(recipe, channels)
    return recipe


def _located(err: vol.Invalid) -> RecipeError:
    path = [str(part) for part in err.path]
    message = err.error_message or str(err)
    if len(path) >= 2 and path[0] == "sequences":
        return RecipeError(path[1], ".".join(path[2:]) or None, message)
    return RecipeError(None, ".".join(path) or None, message)


def _step(
    kind: str, index: int, raw: dict[str, Any], channels: Mapping[str, ChannelSpec]
) -> WriteStep:
    key = raw["channel"]
    where = f"{index}.channel"
    spec = channels.get(key)
    if spec is None:
        raise RecipeError(kind, where, f"names '{key}', which the profile has no channel for")
    if spec.access is not Access.READ_WRITE:
        raise RecipeError(kind, where, f"writes '{key}', which the profile does not mark rw")
    value = raw["value"]
    if isinstance(value, float):
        _check_fits(kind, index, spec, value)
    return WriteStep(
        channel=key,
        value=value if isinstance(value, float) else None,
        source=value if isinstance(value, ValueSource) else None,
        unit=spec.unit,
        resolution=raw.get("resolution"),
        rearm=raw["rearm"],
    )


def _check_fits(kind: str, index: int, spec: ChannelSpec, value: float) -> None:
    """A fixed value must fit the register; with a scale-factor register only its sign and
    whole-number-ness at scale 0 are known now."""
    register = spec.register
    bounds = _INTEGER_RANGES.get(register.data_type)
    if bounds is None:
        if register.data_type is DataType.STRING:
            raise RecipeError(kind, f"{index}.value", f"'{spec.key}' is text, not a number")
        return
    raw = value / register.scale
    low, high = bounds
    if register.scale_register is not None:
        if raw < 0 <= low:
            raise RecipeError(
                kind,
                f"{index}.value",
                f"{value:g} is below 0, the least {register.data_type} holds",
            )
        return
    if raw != round(raw) or not low <= raw <= high:
        raise RecipeError(
            kind,
            f"{index}.value",
            f"{value:g} does not fit '{spec.key}' ({register.data_type}, scale {register.scale:g})",
        )


def _check(recipe: ControlRecipe, channels: Mapping[str, ChannelSpec]) -> None:
    if SetpointKind.AUTO not in recipe.sequences:
        raise RecipeError("auto", None, "is required: it is the release sequence")
    forced = [kind for kind in _FORCED if kind in recipe.sequences]
    if forced and SetpointKind.HOLD not in recipe.sequences:
        raise RecipeError("hold", None, "is required by the forced sequences: the policy holds")
    for kind, steps in recipe.sequences.items():
        _check_sequence(recipe, kind, steps)
    _check_lists(recipe, channels)
    _check_ratings(recipe, channels)


def _check_sequence(
    recipe: ControlRecipe, kind: SetpointKind, steps: tuple[WriteStep, ...]
) -> None:
    """A sequence keeps the device's fallback armed and never re-arms a persisted register."""
    timed = recipe.fallback.kind is not FallbackKind.NONE
    sources = {step.source for step in steps}
    if ValueSource.FALLBACK in sources and not timed:
        raise RecipeError(kind, "value", "writes a fallback time, but the fallback kind is none")
    for step in steps:
        if step.rearm and step.channel in recipe.persisted:
            message = f"'{step.channel}' is persisted: re-arming would wear it"
            raise RecipeError(kind, "rearm", message)
    if kind is SetpointKind.AUTO or not timed:
        return
    if ValueSource.FALLBACK not in sources and recipe.fallback.kind is FallbackKind.DURATION:
        message = "must write the duration of the forced mode (value: fallback)"
        raise RecipeError(kind, "value", message)
    if not any(step.rearm for step in steps):
        message = "must mark the write that re-arms the device's fallback"
        raise RecipeError(kind, "rearm", message)


def _check_lists(recipe: ControlRecipe, channels: Mapping[str, ChannelSpec]) -> None:
    written = recipe.channels
    for key in recipe.persisted:
        if key not in written:
            raise RecipeError(None, "persisted", f"'{key}' is not written by any sequence")
    for key, readback in recipe.readback.items():
        if key not in written:
            raise RecipeError(None, "readback", f"'{key}' is not written by any sequence")
        if readback is not None and readback.channel not in channels:
            message = f"reads back from '{readback.channel}', which the profile has no channel for"
            raise RecipeError(None, "readback", message)


def _check_ratings(recipe: ControlRecipe, channels: Mapping[str, ChannelSpec]) -> None:
    """A power in % needs the rating of its direction; a listed rating must exist."""
    powers = (ValueSource.POWER, ValueSource.SIGNED_POWER)
    ratings = (
        ("charge_rating", recipe.charge_rating, SetpointKind.CHARGE),
        ("discharge_rating", recipe.discharge_rating, SetpointKind.DISCHARGE),
    )
    for name, rating, kind in ratings:
        # A list is tried in order, so one shared recipe fits devices that lack some of them.
        if rating and not any(key in channels for key in rating):
            listed = ", ".join(rating)
            raise RecipeError(None, name, f"names {listed}, none of which the profile has")
        steps = recipe.sequences.get(kind, ())
        if not rating and any(step.unit == "%" and step.source in powers for step in steps):
            raise RecipeError(None, name, f"is required: the {kind} power is written in % of it")
