"""A hybrid inverter on one unit id: PV inverter, its detail models and its battery.

The chain a hybrid inverter of the Fronius Gen24, SMA or Kostal kind serves, as the SunSpec
model definitions (pysunspec2's JSON) lay each model out:

| model | length | what                                                              |
|-------|--------|-------------------------------------------------------------------|
| 1     | 66     | common: the inverter's identity                                   |
| 103   | 50     | three-phase inverter: the AC side, PV and battery together        |
| 120   | 26     | nameplate                                                         |
| 121   | 30     | basic settings                                                    |
| 122   | 44     | extended measurements and status                                  |
| 123   | 24     | immediate controls (served, not writable here)                    |
| 160   | 48     | multiple MPPT: two modules, one per PV string                     |
| 124   | 24     | basic storage controls, as unit 3 (sunspec_devices)               |
| 802   | 62     | battery, as unit 3                                                |

Physics:
- 103.W is the inverter's AC output: the PV production plus the battery's power (+ while it
  discharges, - while it charges), conversion losses left out as elsewhere in the simulator.
  103.WH counts what leaves the AC side (production and battery discharge). 103.DCA/DCV/DCW,
  which a hybrid has no single value for, are not implemented.
- 160's modules split the PV's DC side 60/40 between the strings; their DCW add up to the PV's
  DC power (AC production / inverter efficiency), their DCWH to its DC energy.
- 124 and 802 are the battery's, and 124 takes the same writes as unit 3.

Some hybrids put more than PV strings into model 160: Fronius's Gen24 reports its battery's
charge and discharge as modules 3 and 4 ("StCha 3", "StDisCha 4"; Tinkerforge's esp32-firmware
meters_modbus_tcp/fronius.py, and evcc's fronius-gen24 template, which adds up 160's first two
modules only). This unit serves PV strings only.

Keys are "<model>.<point>", the modules' "160.<module>.<point>".
"""

from __future__ import annotations

from dataclasses import replace

from simulator.physics import INVERTER_EFFICIENCY, SiteState, phase_voltages, pv_dc_side
from simulator.registers import DeviceMap, Value
from simulator.sunspec import ServedModel, sunspec_device
from simulator.sunspec_devices import (
    BATTERY,
    COMMON,
    INVERTER,
    INVERTER_MPPT,
    INVERTER_SLEEPING,
    STORAGE,
    SUNSPEC_BASE,
    apply_storage_writes,
    inverter_values,
    storage_values,
)

HYBRID_UNIT = 2
STRING_SHARES = (0.6, 0.4)
_SECONDS_2000_TO_EPOCH_START = 946_684_800
_PV_STOR = 82  # 120.DERTyp
_CONNECTED_AVAILABLE_OPERATING = 0b111  # 122.PVConn, StorConn
_CONNECTED_AVAILABLE = 0b011
_ECP_CONNECTED = 0b10  # 122.ECPConn bit 1
_CONNECT = 1  # 123.Conn
_DISABLED = 0
_VECTOR = 1  # 121.ClcTotVA
_ISOLATION_KOHM = 1500.0
_NOMINAL_HZ = 50.0

_HYBRID_INVERTER = replace(INVERTER, implemented=INVERTER.implemented - {"DCA", "DCV", "DCW"})
_NAMEPLATE = ServedModel(
    120,
    scale_factors={
        "WRtg_SF": 0, "VARtg_SF": 0, "VArRtg_SF": 0, "ARtg_SF": -1, "PFRtg_SF": -2,
        "WHRtg_SF": 0, "AhrRtg_SF": 0, "MaxChaRte_SF": 0, "MaxDisChaRte_SF": 0,
    },
    implemented=frozenset({
        "DERTyp", "WRtg", "VARtg", "VArRtgQ1", "VArRtgQ2", "VArRtgQ3", "VArRtgQ4", "ARtg",
        "PFRtgQ1", "PFRtgQ2", "PFRtgQ3", "PFRtgQ4", "WHRtg", "MaxChaRte", "MaxDisChaRte",
    }),
)  # fmt: skip
_SETTINGS = ServedModel(
    121,
    scale_factors={"WMax_SF": 0, "VRef_SF": -1, "VRefOfs_SF": -1, "VMinMax_SF": -1,
                   "VAMax_SF": 0, "ECPNomHz_SF": -2},
    implemented=frozenset({"WMax", "VRef", "VRefOfs", "VMax", "VMin", "VAMax", "ClcTotVA",
                           "ECPNomHz"}),
)  # fmt: skip
_STATUS = ServedModel(
    122,
    scale_factors={"WAval_SF": 0, "Ris_SF": 3},
    implemented=frozenset({"PVConn", "StorConn", "ECPConn", "ActWh", "WAval", "StActCtl", "Tms",
                           "Ris"}),
    counters=frozenset({"ActWh"}),
)  # fmt: skip
_CONTROLS = ServedModel(
    123,
    scale_factors={"WMaxLimPct_SF": 0, "OutPFSet_SF": -3},
    implemented=frozenset({"Conn", "WMaxLimPct", "WMaxLim_Ena", "OutPFSet", "OutPFSet_Ena",
                           "VArPct_Ena"}),
)  # fmt: skip
_MODULE_POINTS = ("ID", "IDStr", "DCA", "DCV", "DCW", "DCWH", "Tms", "Tmp", "DCSt", "DCEvt")
_MPPT = ServedModel(
    160,
    scale_factors={"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0},
    implemented=frozenset({"Evt", "N", *_MODULE_POINTS}),
    counters=frozenset({"DCWH"}),
    repeats=len(STRING_SHARES),
)


def _inverter_values(state: SiteState) -> dict[str, Value]:
    """Model 1 and 103: unit 2's inverter, with the battery's power on its AC side."""
    values = inverter_values(state)
    ac_w = state.flows.pv_w + state.flows.battery_w
    currents = [abs(ac_w) / 3 / voltage for voltage in phase_voltages(state)]
    for key in ("103.DCA", "103.DCV", "103.DCW"):
        del values[key]
    return values | {
        "1.Md": f"SimHybrid {state.config.pv_kwp:g}K",
        "1.Opt": "PV + battery",
        "103.A": sum(currents),
        **{f"103.Aph{phase}": a for phase, a in zip("ABC", currents, strict=True)},
        "103.W": ac_w,
        "103.VA": abs(ac_w),
        "103.WH": (state.counters_kwh["pv"] + state.counters_kwh["battery_discharged"]) * 1000,
        "103.St": INVERTER_MPPT if ac_w != 0 else INVERTER_SLEEPING,
    }


def _detail_values(state: SiteState) -> dict[str, Value]:
    """Models 120-123: nameplate, settings, status and controls."""
    config = state.config
    rated_w = config.pv_kwp * 1000.0
    ac_w = state.flows.pv_w + state.flows.battery_w
    pv_conn = _CONNECTED_AVAILABLE_OPERATING if state.flows.pv_w > 0 else _CONNECTED_AVAILABLE
    return {
        "120.DERTyp": _PV_STOR,
        "120.WRtg": rated_w,
        "120.VARtg": rated_w,
        **{f"120.VArRtgQ{q}": (rated_w if q in (1, 4) else -rated_w) * 0.6 for q in range(1, 5)},
        "120.ARtg": rated_w / 3 / config.nominal_voltage,
        **{f"120.PFRtgQ{q}": 0.8 if q in (1, 4) else -0.8 for q in range(1, 5)},
        "120.WHRtg": config.battery_capacity_kwh * 1000.0,
        "120.MaxChaRte": config.battery_max_charge_w,
        "120.MaxDisChaRte": config.battery_max_discharge_w,
        "121.WMax": rated_w,
        "121.VRef": config.nominal_voltage,
        "121.VRefOfs": 0.0,
        "121.VMax": config.nominal_voltage * 1.1,
        "121.VMin": config.nominal_voltage * 0.85,
        "121.VAMax": rated_w,
        "121.ClcTotVA": _VECTOR,
        "121.ECPNomHz": _NOMINAL_HZ,
        "122.PVConn": pv_conn,
        "122.StorConn": _CONNECTED_AVAILABLE_OPERATING,
        "122.ECPConn": _ECP_CONNECTED,
        "122.ActWh": (state.counters_kwh["pv"] + state.counters_kwh["battery_discharged"]) * 1000,
        "122.WAval": max(rated_w - ac_w, 0.0),
        "122.StActCtl": 0,
        "122.Tms": int(state.time.timestamp()) - _SECONDS_2000_TO_EPOCH_START,
        "122.Ris": _ISOLATION_KOHM * 1000.0,
        "123.Conn": _CONNECT,
        "123.WMaxLimPct": 100.0,
        "123.WMaxLim_Ena": _DISABLED,
        "123.OutPFSet": 1.0,
        "123.OutPFSet_Ena": _DISABLED,
        "123.VArPct_Ena": _DISABLED,
    }


def _mppt_values(state: SiteState) -> dict[str, Value]:
    """Model 160: one module per PV string, sharing the PV's DC side."""
    pv_w = state.flows.pv_w
    voltage, current = pv_dc_side(pv_w, state.config.pv_kwp)
    dc_wh = state.counters_kwh["pv"] * 1000.0 / INVERTER_EFFICIENCY
    values: dict[str, Value] = {"160.Evt": 0, "160.N": len(STRING_SHARES)}
    for module, share in enumerate(STRING_SHARES, start=1):
        prefix = f"160.{module}"
        values |= {
            f"{prefix}.ID": module,
            f"{prefix}.IDStr": f"MPPT {module}",
            f"{prefix}.DCA": current * share,
            f"{prefix}.DCV": voltage,
            f"{prefix}.DCW": voltage * current * share,
            f"{prefix}.DCWH": dc_wh * share,
            f"{prefix}.Tms": int(state.time.timestamp()) - _SECONDS_2000_TO_EPOCH_START,
            f"{prefix}.Tmp": 30.0 + 15.0 * (pv_w / (state.config.pv_kwp * 1000.0)),
            f"{prefix}.DCSt": INVERTER_MPPT if pv_w > 0 else INVERTER_SLEEPING,
            f"{prefix}.DCEvt": 0,
        }
    return values


def _values(state: SiteState) -> dict[str, Value]:
    battery = {k: v for k, v in storage_values(state).items() if not k.startswith("1.")}
    return _inverter_values(state) | _detail_values(state) | _mppt_values(state) | battery


HYBRID_INVERTER: DeviceMap = sunspec_device(
    "Hybrid inverter with battery",
    HYBRID_UNIT,
    SUNSPEC_BASE,
    [COMMON, _HYBRID_INVERTER, _NAMEPLATE, _SETTINGS, _STATUS, _CONTROLS, _MPPT, STORAGE, BATTERY],
    _values,
    apply_writes=apply_storage_writes,
)
