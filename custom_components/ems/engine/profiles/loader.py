"""Device profiles: register maps kept as YAML data and validated when they load.

A profile error names the file, the channel and the field, so a user who writes their own
profile sees what to fix instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
import math
from pathlib import Path
import re
from typing import Any

import voluptuous as vol
import yaml

from ..model import (
    LAST_REGISTER,
    Access,
    ChannelKind,
    ChannelSpec,
    DataType,
    Detection,
    DeviceProfile,
    DeviceType,
    PollGroup,
    Register,
    RegisterFunction,
    WordOrder,
)
from ..normalization import UnitError, conversion_for
from ..recipes import ControlRecipe
from .recipe_schema import RecipeError, parse_recipe

BUILTIN_DIR = Path(__file__).parent
MAX_REGISTERS_PER_CHANNEL = 125
# Units whose channels default to counters; each one the unit validator accepts
# (normalization.conversion_for). Apparent energy is its own quantity, in kVAh, never kWh.
COUNTER_UNITS = frozenset({"Wh", "kWh", "MWh", "varh", "kvarh", "VAh", "kVAh", "Ah"})
_UNIT_TEXT = re.compile(r"^\D{1,32}$")


@dataclass(frozen=True, slots=True)
class ProfileError(Exception):
    """A profile file that cannot be used, with where the problem is."""

    file: str
    channel: str | None
    field: str | None
    message: str
    # A control recipe's problem: the sequence ("charge"), or "control" for the whole recipe.
    recipe: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        # An empty channel name is a mistake to point at, not a reason to say nothing.
        if self.channel is not None:
            where.append(f"channel '{self.channel}'")
        if self.recipe is not None:
            where.append(f"control recipe '{self.recipe}'")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}"


def _finite(value: Any) -> float:
    """A number (YAML may also give one as text) that a reading can be multiplied by."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise vol.Invalid("is not a number") from err
    if not math.isfinite(number):
        raise vol.Invalid("must be a finite number")
    return number


def _unit(value: Any) -> str:
    """A unit with a canonical counterpart, checked now rather than on every reading."""
    # pint evaluates numbers in a unit as arithmetic: "9**9**9*W" would never return.
    if not isinstance(value, str) or not _UNIT_TEXT.match(value):
        raise vol.Invalid("is not a unit")
    try:
        conversion_for(value)
    except UnitError as err:
        raise vol.Invalid(str(err)) from err
    return value


def _enum(kind: type[Any]) -> Callable[[Any], Any]:
    return vol.All(str, vol.In([member.value for member in kind]), vol.Coerce(kind))


_ADDRESS = vol.All(int, vol.Range(min=0, max=LAST_REGISTER))
_REGISTER_FIELDS: dict[vol.Marker, Any] = {
    vol.Optional("function"): _enum(RegisterFunction),
    vol.Optional("type"): _enum(DataType),
    vol.Optional("word_order"): _enum(WordOrder),
    vol.Optional("byte_order"): _enum(WordOrder),
    vol.Optional("scale"): vol.All(_finite, vol.NotIn([0.0], msg="must not be 0")),
}
_CHANNEL_SCHEMA = vol.Schema(
    {
        vol.Required("address"): _ADDRESS,
        **_REGISTER_FIELDS,
        vol.Optional("length"): vol.All(int, vol.Range(min=1, max=MAX_REGISTERS_PER_CHANNEL)),
        vol.Optional("scale_register"): _ADDRESS,
        vol.Optional("sentinels"): [vol.All(int, vol.Range(min=0))],
        vol.Optional("unit"): vol.Any(None, _unit),
        vol.Optional("kind"): _enum(ChannelKind),
        vol.Optional("access"): _enum(Access),
        vol.Optional("poll"): _enum(PollGroup),
        vol.Optional("device_class"): str,
        vol.Optional("min"): _finite,
        vol.Optional("max"): _finite,
    }
)
_DETECT_SCHEMA = vol.Schema(
    {
        vol.Required("address"): _ADDRESS,
        vol.Optional("function", default=RegisterFunction.HOLDING.value): _enum(RegisterFunction),
        vol.Optional("type", default=DataType.UINT16.value): _enum(DataType),
        # One code, or the codes of a family's models.
        vol.Required("value"): vol.Any(
            vol.All(int, vol.Range(min=0)),
            vol.All([vol.All(int, vol.Range(min=0))], vol.Length(min=1)),
        ),
    }
)
_CHANNEL_KEY = vol.All(str, vol.Match(r"^[A-Za-z][A-Za-z0-9_]*$", msg="is not a channel name"))
_PROFILE_SCHEMA = vol.Schema(
    {
        vol.Required("id"): vol.All(str, vol.Match(r"^[a-z0-9_]+$", msg="is not a profile id")),
        vol.Required("manufacturer"): str,
        vol.Required("model"): str,
        vol.Required("device_type"): _enum(DeviceType),
        vol.Optional("defaults", default=dict): vol.Schema(_REGISTER_FIELDS),
        vol.Optional("detect"): _DETECT_SCHEMA,
        vol.Required("channels"): vol.All({_CHANNEL_KEY: _CHANNEL_SCHEMA}, vol.Length(min=1)),
        # Checked by recipe_schema once the channels are known.
        vol.Optional("control"): object,
    }
)


def load_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(path.name, None, None, f"cannot be read ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise ProfileError(path.name, None, None, f"is not UTF-8 text ({err.reason})") from err
    except yaml.YAMLError as err:
        raise ProfileError(path.name, None, None, f"is not valid YAML ({err})") from err
    except RecursionError as err:
        # PyYAML parses nested collections recursively; a file can nest deeper than Python.
        raise ProfileError(path.name, None, None, "is nested too deeply") from err
    return parse_profile(raw, source=path.name)


def parse_profile(raw: Any, *, source: str) -> DeviceProfile:
    """Validate an already parsed profile document."""
    if not isinstance(raw, dict):
        raise ProfileError(source, None, None, "must be a mapping with id, channels, …")
    try:
        document = _PROFILE_SCHEMA(raw)
    except vol.Invalid as err:
        raise _locate(source, err) from err
    defaults: dict[str, Any] = document["defaults"]
    channels = tuple(
        _channel(source, key, {**defaults, **fields})
        for key, fields in document["channels"].items()
    )
    control = None
    if "control" in document:
        control = recipe_of(document["control"], channels, source=source)
    return DeviceProfile(
        id=document["id"],
        manufacturer=document["manufacturer"],
        model=document["model"],
        device_type=document["device_type"],
        channels=channels,
        source=source,
        detect=_detection(document.get("detect")),
        control=control,
    )


def recipe_of(raw: Any, channels: Iterable[ChannelSpec], *, source: str) -> ControlRecipe:
    """A profile's control recipe, checked against its channels; ProfileError names the file,
    the recipe (sequence) and the field."""
    try:
        return parse_recipe(raw, {spec.key: spec for spec in channels})
    except RecipeError as err:
        raise ProfileError(
            source, None, err.field, err.message, recipe=err.recipe or "control"
        ) from err


def _detection(fields: dict[str, Any] | None) -> Detection | None:
    if fields is None:
        return None
    register = Register(
        function=fields["function"], address=fields["address"], data_type=fields["type"]
    )
    value = fields["value"]
    values = frozenset(value if isinstance(value, list) else [value])
    return Detection(register=register, values=values)


def load_profiles(directory: Path) -> tuple[dict[str, DeviceProfile], list[ProfileError]]:
    """Load every profile in a folder; a broken file is reported, the others still load."""
    profiles: dict[str, DeviceProfile] = {}
    errors: list[ProfileError] = []
    if not directory.is_dir():
        return profiles, errors
    for path in sorted(directory.glob("*.yaml")):
        try:
            profile = load_profile(path)
        except ProfileError as err:
            errors.append(err)
            continue
        if profile.id in profiles:
            errors.append(ProfileError(path.name, None, "id", f"repeats id '{profile.id}'"))
            continue
        profiles[profile.id] = profile
    return profiles, errors


@cache
def builtin_profiles() -> dict[str, DeviceProfile]:
    """The profiles shipped with the integration; they must all load."""
    profiles, errors = load_profiles(BUILTIN_DIR)
    if errors:
        raise errors[0]
    return profiles


def _channel(source: str, key: str, fields: dict[str, Any]) -> ChannelSpec:
    if "type" not in fields:
        raise ProfileError(source, key, "type", "is required (here or in defaults)")
    if "function" not in fields:
        raise ProfileError(source, key, "function", "is required (here or in defaults)")
    data_type: DataType = fields["type"]
    if data_type is DataType.STRING and "length" not in fields:
        raise ProfileError(source, key, "length", "is required for strings")
    register = Register(
        function=fields["function"],
        address=fields["address"],
        data_type=data_type,
        word_order=fields.get("word_order", WordOrder.BIG),
        byte_order=fields.get("byte_order", WordOrder.BIG),
        length=fields.get("length"),
        scale=fields.get("scale", 1.0),
        scale_register=fields.get("scale_register"),
        sentinels=tuple(fields.get("sentinels", ())),
    )
    if register.address + register.count - 1 > LAST_REGISTER:
        raise ProfileError(source, key, "address", f"runs past the last register ({LAST_REGISTER})")
    minimum, maximum = fields.get("min"), fields.get("max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ProfileError(source, key, "min", f"{minimum} is above max {maximum}")
    unit: str | None = fields.get("unit")
    kind: ChannelKind = fields.get("kind", _default_kind(unit, data_type))
    if data_type is DataType.STRING:
        _check_text_channel(source, key, fields, kind)
    return ChannelSpec(
        key=key,
        unit=unit,
        kind=kind,
        register=register,
        access=fields.get("access", Access.READ_ONLY),
        poll=fields.get("poll", PollGroup.FAST),
        device_class=fields.get("device_class"),
        minimum=minimum,
        maximum=maximum,
    )


def _check_text_channel(source: str, key: str, fields: dict[str, Any], kind: ChannelKind) -> None:
    """Text is neither counted, averaged nor converted: its sensor must not expect a number."""
    if kind not in (ChannelKind.IDENTITY, ChannelKind.STATE):
        raise ProfileError(source, key, "kind", "must be identity or state for a string")
    for field in ("unit", "device_class"):
        if fields.get(field) is not None:
            raise ProfileError(source, key, field, "does not apply to a string")


def _default_kind(unit: str | None, data_type: DataType) -> ChannelKind:
    if data_type is DataType.STRING:
        return ChannelKind.IDENTITY
    if unit in COUNTER_UNITS:
        return ChannelKind.COUNTER
    return ChannelKind.MEASUREMENT


def _locate(source: str, err: vol.Invalid) -> ProfileError:
    """Turn voluptuous's error path into file / channel / field."""
    path = [str(part) for part in err.path]
    message = err.error_message or str(err)
    if len(path) >= 2 and path[0] == "channels":
        field = path[2] if len(path) > 2 else None
        return ProfileError(source, path[1], field, message)
    return ProfileError(source, None, path[0] if path else None, message)
