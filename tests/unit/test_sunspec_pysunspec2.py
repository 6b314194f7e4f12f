"""ems's SunSpec layouts decode what pysunspec2 decodes, point by point.

pysunspec2 is the SunSpec Alliance's own reference implementation. Each case here turns a
model's values into register words with pysunspec2 (`Model.get_mb`), decodes those words
through ems's profile builder and codec, and asks pysunspec2 for its own reading of the same
words. Offsets, types, scale factors, repeating modules and "not implemented" sentinels must
all agree. The first cases use the captures pysunspec2 ships; the rest give every supported
model seeded random values.
"""

from __future__ import annotations

from importlib import resources
import random
import string
from typing import Any

import pytest
import sunspec2.device as sunspec_device
import sunspec2.file.client as sunspec_file

from custom_components.ems.engine.modbus.codec import decode_channel
from custom_components.ems.engine.modbus.plan import RegisterImage
from custom_components.ems.engine.model import ChannelSpec, RegisterFunction
from custom_components.ems.engine.profiles.sunspec import (
    SUPPORTED_MODELS,
    ModelInstance,
    build_profile,
    model_definition,
)

UNIT = 1
BASE = 40002
CAPTURES = ("inverter_123.json", "device_1547.json")
SEEDS = range(4)


def _image(models: list[sunspec_device.Model]) -> RegisterImage:
    """The holding registers of a chain as pysunspec2 encodes it, from BASE on."""
    table: dict[int, int] = {}
    address = BASE
    for model in models:
        raw = model.get_mb()
        for index in range(0, len(raw), 2):
            table[address] = int.from_bytes(raw[index : index + 2], "big")
            address += 1
    return {(UNIT, RegisterFunction.HOLDING): table}


def _instances(models: list[sunspec_device.Model]) -> list[ModelInstance]:
    chain, address = [], BASE
    for model in models:
        # pysunspec2's length counts the two header registers; SunSpec's L does not.
        chain.append(ModelInstance(model_id=model.model_id, address=address, length=model.len - 2))
        address += model.len
    return chain


def _reference(model: sunspec_device.Model, origin: str) -> Any:
    """pysunspec2's computed value of the point an ems channel names ("160.2.DCV")."""
    _, *path = origin.split(".")
    if len(path) == 2:
        module, name = path
        return model.groups["module"][int(module) - 1].points[name].cvalue
    return model.points[path[0]].cvalue


def _compare(models: list[sunspec_device.Model]) -> tuple[int, int]:
    """Assert every channel of the chain's profile; return how many were compared, and how
    many of those held a value (so that a comparison of unset points cannot pass alone)."""
    image = _image(models)
    by_id = {model.model_id: model for model in models}
    profile = build_profile(_instances(models))
    compared = with_value = 0
    for spec in profile.channels:
        assert spec.origin is not None
        expected = _reference(by_id[int(spec.origin.split(".")[0])], spec.origin)
        ours = decode_channel(spec, UNIT, image)
        _assert_same(spec, ours, expected)
        compared += 1
        with_value += ours is not None
    return compared, with_value


def _assert_same(spec: ChannelSpec, ours: float | str | None, theirs: Any) -> None:
    if isinstance(theirs, str):
        theirs = theirs.rstrip("\x00").strip() or None
    if isinstance(ours, str):
        ours = ours.strip() or None
    if isinstance(theirs, float | int) and not isinstance(theirs, bool):
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9), spec.origin
    else:
        assert ours == theirs, spec.origin


@pytest.mark.parametrize("capture", CAPTURES)
def test_pysunspec2_captures_decode_alike(capture: str) -> None:
    """The devices pysunspec2 ships (an inverter with model 129, an IEEE 1547 DER with 701-713)
    decode alike, and the models ems does not read take nothing from the chain."""
    path = resources.files("sunspec2") / "tests" / "test_data" / capture
    device = sunspec_file.FileClientDevice(str(path), addr=BASE)
    device.scan()
    models = list(device.model_list)
    compared, with_value = _compare(models)
    assert compared >= with_value > 0
    profile = build_profile(_instances(models))
    read = {int((spec.origin or "").split(".")[0]) for spec in profile.channels}
    assert read == {model.model_id for model in models} & SUPPORTED_MODELS


def _random_value(point: dict[str, Any], rng: random.Random) -> Any:
    """A value of the point's type that is not its "not implemented" value; 1 in 8 is unset."""
    kind = point["type"]
    if kind == "sunssf":
        return rng.randint(-3, 3)
    if kind == "pad" or point["name"] in ("ID", "L"):
        return None
    return None if rng.random() < 0.125 else _set_value(point, rng)


def _set_value(point: dict[str, Any], rng: random.Random) -> Any:
    kind = point["type"]
    if kind == "string":
        return "".join(
            rng.choices(
                string.ascii_letters + string.digits, k=rng.randint(1, 2 * int(point["size"]))
            )
        )
    if kind in ("enum16", "enum32") and point.get("symbols"):
        return int(rng.choice(point["symbols"])["value"])
    bits = 16 * int(point["size"])
    if kind.startswith("int"):
        return rng.randint(-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
    if kind.startswith("float"):
        return round(rng.uniform(-1e5, 1e5), 2)
    return rng.randint(1, 2**bits - 2)


def _random_model(model_id: int, rng: random.Random) -> sunspec_device.Model:
    definition = model_definition(model_id)
    data: dict[str, Any] = {
        point["name"]: _random_value(point, rng) for point in definition["points"]
    }
    for group in definition.get("groups", ()):
        data[group["name"]] = [
            {point["name"]: _random_value(point, rng) for point in group["points"]}
            for _ in range(rng.randint(1, 4))
        ]
    data["ID"] = model_id
    fixed = sum(int(point["size"]) for point in definition["points"])
    module = sum(
        int(point["size"]) for group in definition.get("groups", ()) for point in group["points"]
    )
    modules = len(data.get("module", ()))
    if "N" in data:
        data["N"] = modules  # 160 says how many modules follow
    data["L"] = fixed - 2 + module * modules
    return sunspec_device.Model(model_id=model_id, data=data)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("model_id", sorted(SUPPORTED_MODELS - {1}))
def test_every_supported_model_decodes_as_pysunspec2_does(model_id: int, seed: int) -> None:
    """A common model and one supported model, random values, every point compared."""
    rng = random.Random(model_id * 100 + seed)
    models = [_random_model(1, rng), _random_model(model_id, rng)]
    compared, with_value = _compare(models)
    assert with_value >= compared // 2


@pytest.mark.parametrize("seed", SEEDS)
def test_a_hybrid_chain_decodes_as_pysunspec2_does(seed: int) -> None:
    """The hybrid chain the simulator serves (103, 120-123, 160, 124, 802) as one profile:
    channels that move to another model's key still read their own model's point."""
    rng = random.Random(seed)
    ids = (1, 103, 120, 121, 122, 123, 160, 124, 802)
    compared, with_value = _compare([_random_model(model_id, rng) for model_id in ids])
    assert with_value >= compared // 2
