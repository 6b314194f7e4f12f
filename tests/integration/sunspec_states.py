"""What a SunSpec point's sensor must show for what the simulator serves.

The names come from the SunSpec definition itself, not from ems's profile, so that a profile
that names a state or a bit wrongly fails.
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.ems.engine.model import ChannelSpec, DataType


def live_state(hass: HomeAssistant, entry_id: str, device_id: str, spec: ChannelSpec) -> State:
    """The state of a channel's sensor, which must exist and report."""
    unique_id = f"{entry_id}_{device_id}_{spec.key}"
    entity_id = er.async_get(hass).async_get_entity_id("sensor", "ems", unique_id)
    assert entity_id is not None, unique_id
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state != STATE_UNAVAILABLE, entity_id
    return state


_THOUSANDS = ("Wh", "varh", "VAh")
_FLOAT32_RESOLUTION = 2.0**-23  # served in these, shown in kWh, kvarh and kVAh


def document_point(origin: str) -> dict[str, Any]:
    """A point as its model's definition gives it."""
    model, *_, name = origin.split(".")
    document = json.loads(
        importlib.resources.files("sunspec2")
        .joinpath("models", "json", f"model_{model.split('@')[0]}.json")
        .read_text(encoding="utf-8")
    )
    groups = [document["group"], *document["group"].get("groups", [])]
    point: dict[str, Any] = next(
        p for group in groups for p in group["points"] if p["name"] == name
    )
    return point


def document_symbols(origin: str) -> dict[int, str]:
    """A point's symbols as its model's definition names them: value (or bit) → name."""
    return {int(s["value"]): s["name"] for s in document_point(origin).get("symbols", [])}


def _state_key(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def assert_shows(spec: ChannelSpec, served: object, state: State) -> None:
    """A missing point (or an accumulator's 0, SunSpec's "not implemented") is unknown; text
    is itself; an enumeration shows its value's name and keeps the number as `code`; a bit
    field shows how many bits are set and names them in `active_flags`; a number is shown in
    its canonical unit."""
    origin = spec.origin
    assert origin is not None
    accumulator = str(document_point(origin)["type"]).startswith("acc")
    if served is None or (served == 0 and accumulator):
        assert state.state == "unknown", (state.entity_id, origin)
        return
    if isinstance(served, str):
        assert state.state == served, state.entity_id
        return
    assert isinstance(served, int | float)
    if spec.symbols is not None:
        symbols = document_symbols(origin)
        assert isinstance(served, int)
        if spec.symbols.bitfield:
            bits = [bit for bit in range(64) if served >> bit & 1]
            names = [_state_key(symbols[b]) if b in symbols else f"bit_{b}" for b in bits]
            assert state.attributes["active_flags"] == names, origin
            assert int(state.state) == len(bits), origin
        else:
            name = symbols.get(served)
            assert state.attributes["code"] == served, origin
            assert state.state == ("unknown" if name is None else _state_key(name)), origin
        return
    canonical = served / 1000 if spec.unit in _THOUSANDS else served
    assert state.state != "unknown", (state.entity_id, origin, served)
    # A float32 is shown in its shortest decimal (231.4, not 231.399993896484): that decimal
    # is the same float32, which carries 24 bits, about 6e-8 of the value.
    relative = _FLOAT32_RESOLUTION if spec.register.data_type is DataType.FLOAT32 else 1e-9
    assert float(state.state) == pytest.approx(canonical, rel=relative, abs=1e-9), origin
