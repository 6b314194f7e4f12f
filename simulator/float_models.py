"""The float SunSpec models: an inverter serving model 113 and a meter serving model 213.

SunSpec's float models carry each value as an IEEE 754 float32, with no scale-factor points,
and a point that is not implemented serves NaN (0x7FC00000). Their points are named as in the
integer models 103 and 203, except two things the definitions (pysunspec2's model_113.json and
model_213.json) give otherwise:
- model 213 names its line-to-line voltages PPVphAB, PPVphBC and PPVphCA (203: PhVphAB, ...);
- model 213's power factors are ratios from -1 to 1 (unit "PF"); 203's, and 113's, are
  percentages.

The physical site is the standard one: unit 2 is the PV inverter, unit 4 the meter on its
output, each with the values of its integer twin in simulator.sunspec_devices, carried into
the float model's names and units. Keys: "113.*" and "213.*".
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.physics import SiteState
from simulator.registers import Value
from simulator.sunspec import ServedModel, sunspec_device
from simulator.sunspec_devices import (
    COMMON,
    INVERTER,
    METER,
    METER_BASE,
    SUNSPEC_BASE,
    inverter_values,
    pv_meter_values,
)

FLOAT_INVERTER_UNIT = 2
FLOAT_METER_UNIT = 4
_LINE_VOLTAGES = {"PhVphAB": "PPVphAB", "PhVphBC": "PPVphBC", "PhVphCA": "PPVphCA"}
_RATIO_POINTS = frozenset({"PF", "PFphA", "PFphB", "PFphC"})


def _in_213(name: str) -> str:
    return _LINE_VOLTAGES.get(name, name)


FLOAT_INVERTER_MODEL = ServedModel(
    113, implemented=INVERTER.implemented, counters=INVERTER.counters
)
FLOAT_METER_MODEL = ServedModel(
    213,
    implemented=frozenset(_in_213(name) for name in METER.implemented),
    counters=frozenset(_in_213(name) for name in METER.counters),
)


def _renamed(values: Mapping[str, Value], integer_model: str, float_model: str) -> dict[str, Value]:
    prefix = f"{integer_model}."
    return {
        key.replace(prefix, f"{float_model}.", 1) if key.startswith(prefix) else key: value
        for key, value in values.items()
    }


def _float_inverter_values(state: SiteState) -> dict[str, Value]:
    return _renamed(inverter_values(state), "103", "113")


def _float_meter_values(state: SiteState) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for key, value in pv_meter_values(state).items():
        model, _, name = key.partition(".")
        if model != "203":
            values[key] = value
            continue
        renamed = f"213.{_in_213(name)}"
        if name in _RATIO_POINTS and isinstance(value, int | float):
            values[renamed] = value / 100.0
        else:
            values[renamed] = value
    return values


FLOAT_PV_INVERTER = sunspec_device(
    "SunSpec float PV inverter",
    FLOAT_INVERTER_UNIT,
    SUNSPEC_BASE,
    [COMMON, FLOAT_INVERTER_MODEL],
    _float_inverter_values,
)
FLOAT_PV_METER = sunspec_device(
    "SunSpec float PV meter",
    FLOAT_METER_UNIT,
    METER_BASE,
    [COMMON, FLOAT_METER_MODEL],
    _float_meter_values,
)
