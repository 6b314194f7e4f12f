"""Write the names, states and icons of SunSpec's points into en.json and icons.json.

A SunSpec point that ems gives no engineering name keeps the standard's, and so does every
point with named values; their translation keys come from where they are defined
(`standard_translation`: "103.TmpSnk" → sunspec_103_tmpsnk). This script derives those
entries from the SunSpec Alliance's definitions that pysunspec2 ships, for every model in
`SUPPORTED_MODELS`, so that no name is typed by hand and none is missing.

    .venv/bin/python scripts/sunspec_strings.py          # rewrite the files
    .venv/bin/python scripts/sunspec_strings.py --check  # exit 1 if they differ

`tests/unit/test_sunspec_strings.py` fails while the files differ from what this writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import sys
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.ems.engine.profiles.sunspec import (  # noqa: E402
    SUPPORTED_MODELS,
    model_definition,
    standard_translation,
    symbol_name,
)

PACKAGE = ROOT / "custom_components" / "ems"
STRINGS = PACKAGE / "translations" / "en.json"
ICONS = PACKAGE / "icons.json"
PREFIX = "sunspec_"

# The definitions' labels are often the point's abbreviation ("WRtg"); their description's
# first sentence then names it, when it is short enough for an entity name.
_MAX_NAME = 48
# Where neither is fit to show; the meaning is the definition's. By point name, then by origin.
_NAMES_BY_POINT = {
    "AphA": "Phase A current", "AphB": "Phase B current", "AphC": "Phase C current",
    "WRtg": "Power rating", "VARtg": "Apparent power rating", "ARtg": "Current rating",
    "MaxChaRte": "Maximum charge rate", "MaxDisChaRte": "Maximum discharge rate",
    "ConnPh": "Connected phase", "ECPConn": "Grid connection", "ChaState": "State of charge",
    "VArAval": "Available reactive power", "WMaxLimPct_RmpTms": "Power limit ramp time",
    "OutPFSet_RmpTms": "Power factor ramp time",
    "VArPct_RmpTms": "Reactive power limit ramp time",
}  # fmt: skip
_NAMES_BY_QUADRANT = {
    "VArRtg": "Reactive power rating", "PFRtg": "Minimum power factor rating",
    "PFMin": "Minimum power factor", "ActVArh": "Reactive energy",
}  # fmt: skip
_NAMES = {
    "1.DA": "Modbus device address",
    "1.Opt": "Options",
    "103.StVnd": "Vendor operating state",
    "103.Evt1": "Events",
    "103.Evt2": "Events (second word)",
    "120.DERTyp": "DER type",
    "120.AhrRtg": "Usable battery capacity rating",
    "121.WGra": "Active power ramp rate",
    "121.MaxRmpRte": "Maximum ramp rate",
    "121.VArAct": "Reactive power action on charge and discharge",
    "121.ClcTotVA": "Apparent power calculation",
    "122.StSetLimMsk": "Setpoint limits reached",
    "122.TmSrc": "Time source",
    "122.Tms": "Inverter time",
    "123.WMaxLimPct": "Power limit",
    "123.WMaxLim_Ena": "Power limit enabled",
    "123.OutPFSet": "Power factor setpoint",
    "123.OutPFSet_Ena": "Power factor setpoint enabled",
    "123.VArPct_Mod": "Reactive power limit mode",
    "123.VArPct_Ena": "Reactive power limit enabled",
    "124.MinRsvPct": "Minimum reserve",
    "124.StorAval": "Available energy",
    "124.StorCtl_Mod": "Storage control mode",
    "124.ChaGriSet": "Charging from grid",
    "124.InOutWRte_WinTms": "Charge and discharge rate window",
    "124.InOutWRte_RvrtTms": "Charge and discharge rate timeout",
    "124.InOutWRte_RmpTms": "Charge and discharge rate ramp time",
    "802.StateVnd": "Vendor battery state",
    "802.Evt1": "Battery events",
    "802.Evt2": "Battery events (second word)",
}
_ICON_BY_UNIT = {
    "W": "mdi:flash", "VA": "mdi:flash-outline", "var": "mdi:flash-outline",
    "VAr": "mdi:flash-outline", "V": "mdi:sine-wave", "A": "mdi:current-ac",
    "Hz": "mdi:sine-wave", "Wh": "mdi:counter", "VAh": "mdi:counter", "varh": "mdi:counter",
    "C": "mdi:thermometer", "Secs": "mdi:timer-outline", "AH": "mdi:battery-outline",
    "Ah": "mdi:battery-outline", "ohms": "mdi:omega", "cos()": "mdi:angle-acute",
    "Pct": "mdi:angle-acute",
}  # fmt: skip


# Abbreviations that stay in capitals when a symbol's name becomes a state's name.
_ACRONYMS = frozenset({"PV", "MPPT", "SOC", "DC", "AC", "LVRT", "HVRT", "LFRT", "HFRT", "PF",
                       "VA", "VAR", "WMAX", "VARMAX", "VARAVAL", "OEM01"})  # fmt: skip


def _sentence(text: str) -> str:
    """A label in sentence case ("Operating State" → "Operating state"); abbreviations
    (PV, SoC, AC) stay as they are."""
    first, *rest = text.strip().rstrip(".").split()
    words = [word.lower() if re.fullmatch(r"[A-Z][a-z]+", word) else word for word in rest]
    return " ".join([first[0].upper() + first[1:], *words])


def _name(origin: str, point: dict[str, Any]) -> str:
    name = point["name"]
    if origin in _NAMES:
        return _NAMES[origin]
    if name in _NAMES_BY_POINT:
        return _NAMES_BY_POINT[name]
    if (match := re.fullmatch(r"(\w+)Q([1-4])", name)) and match.group(1) in _NAMES_BY_QUADRANT:
        return f"{_NAMES_BY_QUADRANT[match.group(1)]} Q{match.group(2)}"
    label = point.get("label") or point["name"]
    if " " not in label:
        description = (point.get("desc") or "").split(". ")[0]
        if description and len(description) <= _MAX_NAME:
            label = description
    return _sentence(label)


def _state_name(symbol: dict[str, Any]) -> str:
    """ "SHUTTING_DOWN" → "Shutting down", "MPPT" stays "MPPT"."""
    words = re.sub(r"[_\s-]+", " ", symbol_name(symbol["name"])).split()
    shown = [word.upper() if word.upper() in _ACRONYMS else word for word in words]
    text = " ".join(shown)
    return text[0].upper() + text[1:] if text else symbol["name"]


def _icon(point: dict[str, Any]) -> str:
    kind = point["type"]
    if kind.startswith("bitfield"):
        return "mdi:alert-circle-outline"
    if kind.startswith("enum"):
        return "mdi:state-machine"
    if kind == "string":
        return "mdi:information-outline"
    units = str(point.get("units") or "").strip()
    if units.startswith("%"):
        return "mdi:percent"
    return _ICON_BY_UNIT.get(units, "mdi:numeric")


def _points(model_id: int) -> list[tuple[str, dict[str, Any]]]:
    """(origin, point) for every point ems turns into a channel; a repeating group's as its
    first repeat (their translation is shared)."""
    definition = model_definition(model_id)
    found = [
        (f"{model_id}.{point['name']}", point)
        for point in definition["points"]
        if point["name"] not in ("ID", "L")
    ]
    found += [
        (f"{model_id}.1.{point['name']}", point)
        for group in definition.get("groups", ())
        for point in group["points"]
    ]
    return [(origin, p) for origin, p in found if p["type"] not in ("sunssf", "pad")]


def entries() -> tuple[dict[str, Any], dict[str, Any]]:
    """The sensor translations and icons of every supported model's points, by key."""
    names: dict[str, Any] = {}
    icons: dict[str, Any] = {}
    for model_id in sorted(SUPPORTED_MODELS):
        for origin, point in _points(model_id):
            key, placeholders = standard_translation(origin)
            name = _name(origin, point)
            if "module" in placeholders:
                first = name.split()[0]
                if re.fullmatch(r"[A-Z][a-z]+", first):
                    name = first.lower() + name[len(first) :]
                name = f"Module {{module}} {name}"
            entry: dict[str, Any] = {"name": name}
            if point["type"].startswith("enum") and point.get("symbols"):
                entry["state"] = {
                    symbol_name(symbol["name"]): _state_name(symbol) for symbol in point["symbols"]
                }
            names[key] = entry
            icons[key] = {"default": _icon(point)}
    return names, icons


def _merged(document: dict[str, Any], generated: dict[str, Any]) -> dict[str, Any]:
    sensors = {k: v for k, v in document["entity"]["sensor"].items() if not k.startswith(PREFIX)}
    return {**document, "entity": {**document["entity"], "sensor": sensors | generated}}


def rendered() -> dict[Path, str]:
    """The two files as this script writes them."""
    names, icons = entries()
    out: dict[Path, str] = {}
    for path, generated in ((STRINGS, names), (ICONS, icons)):
        document = json.loads(path.read_text(encoding="utf-8"))
        out[path] = json.dumps(_merged(document, generated), indent=2, ensure_ascii=False) + "\n"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    args = parser.parse_args()
    stale = [path for path, text in rendered().items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run scripts/sunspec_strings.py")
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
