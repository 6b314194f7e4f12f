"""Fuzzing the profile loader: any document either loads into a usable profile or raises a
`ProfileError` that names the file and, inside the document, the channel or field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings, strategies as st
import pytest
import yaml

from custom_components.ems.engine.profiles.loader import BUILTIN_DIR, ProfileError, parse_profile
from custom_components.ems.glue.devices import _load_catalogue, unknown_device_class

from .usable import addresses, device_for, image_of, run_cycles

SOURCE = "fuzz.yaml"
BASE: dict[str, Any] = yaml.safe_load(
    (BUILTIN_DIR / "eastron_sdm630.yaml").read_text(encoding="utf-8")
)
BASE_TEXT = (BUILTIN_DIR / "eastron_sdm630.yaml").read_text(encoding="utf-8")
CHANNEL_FIELDS = (
    "address",
    "function",
    "type",
    "word_order",
    "byte_order",
    "scale",
    "length",
    "scale_register",
    "sentinels",
    "unit",
    "kind",
    "access",
    "poll",
    "device_class",
    "min",
    "max",
)
TOP_FIELDS = ("id", "manufacturer", "model", "device_type", "defaults", "detect", "channels")
DETECT_FIELDS = ("address", "function", "type", "value")
FUZZ = settings(max_examples=150, deadline=None)

# Units a profile may give: canonical ones, scaled ones, and some pint knows that ems has no
# place for.
UNITS = ["W", "kW", "Wh", "kWh", "var", "kvarh", "VA", "V", "mV", "A", "mA", "Hz", "%", "°C",
         "degF", "K", "s", "h", "furlong", "W/m²", "m", "kg"]  # fmt: skip


# Values a user plausibly gets wrong, next to arbitrary ones: every enum value, boundaries,
# numbers that do not fit a float, non-finite numbers and units pint does or does not know.
_EDGES: st.SearchStrategy[Any] = st.sampled_from(
    [
        0,
        -1,
        1,
        0xFFFF,
        0x10000,
        10**400,
        -(10**400),
        1e308,
        float("inf"),
        float("-inf"),
        float("nan"),
        "nan",
        "inf",
        "1e400",
        True,
        "",
        " ",
        "0x10",
        [],
        {},
        None,
        "holding",
        "input",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float32",
        "float64",
        "string",
        "big",
        "little",
        "measurement",
        "counter",
        "state",
        "setpoint",
        "identity",
        "ro",
        "rw",
        "fast",
        "slow",
        "meter",
        "inverter",
        "battery",
        "load",
        "grid",
        *UNITS,
        "power",
        "energy",
        "toaster",
    ]
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
VALUES = _EDGES | st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.text(max_size=10) | st.integers() | st.none() | st.booleans()


@st.composite
def mutation(draw: st.DrawFn, base: dict[str, Any] = BASE) -> tuple[str, Any, Any]:
    """One change to a document like `base`: (kind, where, value)."""
    kind = draw(
        st.sampled_from(
            [
                "top",
                "drop_top",
                "channel",
                "drop_channel_field",
                "channel_body",
                "rename",
                "defaults",
                "detect",
            ]
        )
    )
    channel = draw(st.sampled_from(sorted(base["channels"])))
    if kind in {"top", "drop_top"}:
        return kind, draw(st.sampled_from(TOP_FIELDS) | KEYS), draw(VALUES)
    if kind in {"channel", "drop_channel_field"}:
        return kind, (channel, draw(st.sampled_from(CHANNEL_FIELDS) | KEYS)), draw(VALUES)
    if kind == "rename":
        return kind, channel, draw(KEYS)
    if kind == "channel_body":
        return kind, channel, draw(VALUES)
    fields = CHANNEL_FIELDS if kind == "defaults" else DETECT_FIELDS
    return kind, draw(st.sampled_from(fields) | KEYS), draw(VALUES)


def mutate(document: dict[str, Any], change: tuple[str, Any, Any]) -> None:
    """Apply one mutation in place (a step that cannot apply, such as on a list, is skipped)."""
    kind, where, value = change
    channels = document.get("channels")
    match kind:
        case "top":
            document[where] = value
        case "drop_top":
            document.pop(where, None)
        case "channel" | "drop_channel_field" if isinstance(channels, dict):
            body = channels.get(where[0])
            if isinstance(body, dict):
                if kind == "channel":
                    body[where[1]] = value
                else:
                    body.pop(where[1], None)
        case "channel_body" if isinstance(channels, dict):
            channels[where] = value
        case "rename" if isinstance(channels, dict) and where in channels:
            channels[value] = channels.pop(where)
        case "defaults" | "detect" if isinstance(document.get(kind), dict):
            document[kind][where] = value


def check_error(err: ProfileError, *, parsed_mapping: bool) -> None:
    """The message starts with the file; inside a mapping it names a channel or a field."""
    assert err.file == SOURCE
    assert str(err).startswith(SOURCE)
    assert err.message
    if parsed_mapping:
        assert err.channel is not None or err.field is not None, str(err)
    if err.channel is not None:
        assert f"channel '{err.channel}'" in str(err)
    if err.field is not None:
        assert f"field '{err.field}'" in str(err)


def load_or_error(document: Any) -> None:
    """Parse a document; a profile must be usable, anything else a located ProfileError."""
    try:
        profile = parse_profile(document, source=SOURCE)
    except ProfileError as err:
        check_error(err, parsed_mapping=isinstance(document, dict))
        return
    if (problem := unknown_device_class(profile)) is not None:
        check_error(problem, parsed_mapping=True)
        return
    device = device_for(profile)
    words = dict.fromkeys(addresses(profile), 0x4142)
    run_cycles(device, [image_of(device, words)])


@FUZZ
@given(changes=st.lists(mutation(), min_size=1, max_size=4))
def test_mutated_shipped_profile(changes: list[tuple[str, Any, Any]]) -> None:
    """Mutated fields, types and nesting of the SDM630 profile: a usable profile or an error."""
    document = copy.deepcopy(BASE)
    for change in changes:
        mutate(document, change)
    load_or_error(document)


@FUZZ
@given(change=mutation())
def test_one_mistake_is_located(change: tuple[str, Any, Any]) -> None:
    """A single broken channel field is reported at that channel (or the name it now has)."""
    document = copy.deepcopy(BASE)
    mutate(document, change)
    kind, where, value = change
    try:
        parse_profile(document, source=SOURCE)
    except ProfileError as caught:
        err = caught
    else:
        return
    check_error(err, parsed_mapping=True)
    if kind in {"channel", "drop_channel_field", "channel_body"}:
        channel = where[0] if isinstance(where, tuple) else where
        assert err.channel == channel, str(err)
    elif kind == "rename":
        assert err.channel in {str(value), *BASE["channels"]}, str(err)
    elif kind in {"top", "drop_top"} and where in TOP_FIELDS and where != "channels":
        assert err.field == where or err.channel is not None, str(err)


@FUZZ
@given(document=VALUES | st.dictionaries(st.sampled_from(TOP_FIELDS) | KEYS, VALUES))
def test_arbitrary_documents(document: Any) -> None:
    """Anything YAML can hold, at the top or as a whole document."""
    load_or_error(document)


# Per field: values a user writes right, and values they get wrong. Fields are mostly right so
# that profiles load and their combinations (a string counter, a unit without a canonical one, a
# power range of 0) reach the pipeline and the sensors; a few are wrong in ways users get wrong.
_ADDRESSES = st.integers(0, 0xFFFF)
RIGHT: dict[str, st.SearchStrategy[Any]] = {
    "address": _ADDRESSES,
    "scale_register": _ADDRESSES,
    "function": st.sampled_from(["holding", "input"]),
    "type": st.sampled_from(
        ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"]
    ),
    "word_order": st.sampled_from(["big", "little"]),
    "byte_order": st.sampled_from(["big", "little"]),
    "scale": st.sampled_from([0.001, 0.01, 0.1, 10, 1e-320, 1e300, -1, "0.1"]),
    "length": st.integers(1, 125),
    "sentinels": st.lists(st.sampled_from([0, 0x8000, 0xFFFF, 0x7FFFFFFF, 10**40]), max_size=3),
    "unit": st.sampled_from([*UNITS, "Ah", None, "", "ppm", "dB", "%RH", "lux"]),
    "kind": st.sampled_from(["measurement", "counter", "state", "setpoint", "identity"]),
    "access": st.sampled_from(["ro", "rw"]),
    "poll": st.sampled_from(["fast", "slow"]),
    "device_class": st.sampled_from(
        ["power", "energy", "voltage", "temperature", "toaster", "Power", ""]
    ),
    "min": st.sampled_from([0, -1, -50, 0.5, 1e6, 1e308, -1e308, "12"]),
    "max": st.sampled_from([0, 1, 50, 0.5, 1e6, 1e308, -1e308, "12"]),
}
_NUMBERS = [10**400, float("inf"), float("nan"), "nan", "-inf", True, None, "x", [], {}]
WRONG: dict[str, st.SearchStrategy[Any]] = {
    **dict.fromkeys(
        ("address", "scale_register"),
        st.sampled_from([0x10000, -1, 10**400, 1.5, "0x10", None, []]),
    ),
    **dict.fromkeys(
        ("function", "type", "word_order", "byte_order", "kind", "access", "poll"),
        st.sampled_from(["coil", "float16", "middle", "gauge", "wo", 3, None]),
    ),
    **dict.fromkeys(("scale", "min", "max"), st.sampled_from([*_NUMBERS, 0, 0.0])),
    "length": st.sampled_from([0, 126, -1, 10**400, "8", None]),
    "sentinels": st.sampled_from([None, 0, "0x8000", [-1], ["x"]]),
    "unit": st.sampled_from([5, [], {"W": 1}]),
    "device_class": st.sampled_from([1, None, ["power"]]),
}


@st.composite
def channel_body(draw: st.DrawFn) -> dict[str, Any]:
    """A channel written field by field: each field present or not, rarely wrong."""
    body: dict[str, Any] = {}
    for name, right in RIGHT.items():
        if name == "address" or draw(st.booleans()):
            wrong = draw(st.integers(0, 19)) == 0
            body[name] = draw(WRONG[name] if wrong else right)
    return body


@FUZZ
@given(
    channels=st.dictionaries(
        st.sampled_from(["ActivePower", "AC_Power", "EnergyImport", "SOC", "Serial", "X_1"]),
        channel_body(),
        min_size=1,
        max_size=3,
    ),
    device_type=st.sampled_from(["meter", "inverter", "battery", "load", "grid"]),
)
# What this target found, kept as regressions: a dimensionless unit, a device class sensors do
# not know, a power range rated 0 kW, a text register counted as energy, and a text register
# whose key implies a number.
@example(channels={"ActivePower": {"address": 0, "unit": ""}}, device_type="meter")
@example(channels={"ActivePower": {"address": 0, "device_class": "toaster"}}, device_type="meter")
@example(
    channels={"ActivePower": {"address": 0, "min": 0}, "EnergyImport": {"address": 2}},
    device_type="meter",
)
@example(
    channels={"EnergyImport": {"address": 0, "type": "string", "length": 2, "kind": "counter"}},
    device_type="meter",
)
@example(
    channels={"Serial": {"address": 0, "type": "string", "length": 2, "unit": "V"}},
    device_type="meter",
)
# A text register under a key that implies a number (found by a CI run): no numeric metadata.
@example(channels={"SOC": {"address": 0, "type": "string", "length": 1}}, device_type="meter")
def test_generated_channels(channels: dict[str, Any], device_type: str) -> None:
    """Channels built field by field: what loads runs through the pipeline and the sensors."""
    document = {
        "id": "generated",
        "manufacturer": "Acme",
        "model": "G1",
        "device_type": device_type,
        "defaults": {"function": "input", "type": "float32"},
        "channels": channels,
    }
    load_or_error(document)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example: hypothesis reruns a test body many times."""
    return tmp_path_factory.mktemp("profiles")


def _load_text(folder: Path, raw: bytes) -> None:
    """The user's path: a file in `<config>/ems_profiles`, read into the catalogue."""
    (folder / SOURCE).write_bytes(raw)
    catalogue = _load_catalogue(folder)
    for err in catalogue.errors:
        check_error(err, parsed_mapping=False)
    for profile in catalogue.profiles.values():
        if profile.source == SOURCE:
            device = device_for(profile)
            run_cycles(device, [image_of(device, dict.fromkeys(addresses(profile), 0))])


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_random_text(folder: Path, text: str) -> None:
    """Random text is not YAML, not a mapping, or not a profile: all reported by file name."""
    _load_text(folder, text.encode("utf-8", errors="surrogatepass"))


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes(folder: Path, raw: bytes) -> None:
    """A file that is not even UTF-8 (a copied binary, a wrong encoding) is a ProfileError."""
    _load_text(folder, raw)


@st.composite
def edited_text(draw: st.DrawFn) -> str:
    """The shipped file with a few characters deleted, inserted or replaced."""
    text = BASE_TEXT.replace("id: eastron_sdm630", "id: edited_sdm630")
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 5))
        text = text[:at] + draw(st.text(max_size=4)) + text[at + cut :]
    return text


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=edited_text())
def test_edited_file(folder: Path, text: str) -> None:
    """Typos in the YAML text: indentation, brackets, colons, numbers."""
    _load_text(folder, text.encode("utf-8", errors="surrogatepass"))


def test_deeply_nested_document(folder: Path) -> None:
    """Nesting deep enough to exhaust the YAML parser's recursion is a ProfileError too."""
    _load_text(folder, b"id: " + b"[" * 100_000)
