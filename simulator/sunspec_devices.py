"""The site's SunSpec devices: PV inverter (unit 2), battery storage (unit 3), PV meter (unit 4).

| unit | base  | models         | device                                              |
|------|-------|----------------|-----------------------------------------------------|
| 2    | 40000 | 1, 103         | three-phase PV inverter, integer + scale factor     |
| 3    | 40000 | 1, 124, 802    | battery inverter: basic storage controls + battery  |
| 4    | 50000 | 1, 203         | wye meter on the PV inverter's AC output            |

Units 2 and 3 put the "SunS" marker at 40000; unit 4 at 50000, and it answers exception 2 at
40000 and 0, so discovery has to try 40000, 0 and 50000 in turn.

Signs. The pysunspec2 definitions of models 802 and 203 do not state a sign; the conventions
chosen here are:
- 103.W (inverter "AC Power") >= 0: what the inverter produces.
- 802.W ("Total power flowing to/from the battery bank", detail "DC Measurement.") and 802.A
  ("Total DC current flowing to/from the battery bank") are > 0 while the battery discharges
  and < 0 while it charges: the generator convention of the SunSpec DER models (701.W: "Active
  power is positive for DER generation and negative for absorption"), which is also OpenEMS's
  battery sign. 802.AChaMax/ADisChaMax are magnitudes ("always unsigned"), as defined.
- 203.W ("Total Real Power") > 0 imports into the metered circuit from the grid side and
  < 0 exports, matching the pair TotWhImp ("Total Real Energy Imported") and TotWhExp ("Total
  Real Energy Exported"). This meter sits on the PV inverter's output, so while the PV
  produces it reads W < 0 and TotWhExp grows with the production; at night it reads the
  inverter's standby draw as a small import (W > 0, TotWhImp grows by a few Wh a night).
  Currents are magnitudes; PF (in percent, as the definitions' unit "Pct" says, so 100 at
  unity) carries the sign of W, as 701.PF defines ("The sign of power factor should be the
  sign of active power").

Model 124 as the battery inverter implements it (see physics.StorageControls):
- WChaMax = battery_max_charge_w (read-only). OutWRte is a percentage of the maximum
  discharge power battery_max_discharge_w (model 124 has no WDisChaMax point; it equals
  802.WDisChaRteMax).
- StorCtl_Mod 0: the device's own logic, self-consumption (auto).
- Bit 0 (charge) alone: the battery runs at -(InWRte % x WChaMax), i.e. a forced charge; a
  negative InWRte discharges. Bit 1 (discharge) alone: +(OutWRte % x WDisChaMax), a forced
  discharge; a negative OutWRte charges. Both bits: hold at 0 W, unless exactly one of InWRte
  and OutWRte is nonzero, which then applies alone. A forced rate of 0 holds: hold is
  StorCtl_Mod 3 with both rates 0 (what set_battery_command("hold") writes), or bit 0 alone
  with InWRte 0.
- MinRsvPct: the battery never discharges below this SoC, in any mode.
- InOutWRte_RvrtTms > 0: a write of StorCtl_Mod, InWRte or OutWRte (even of the same value)
  starts the timer; without another such write for that many simulated seconds StorCtl_Mod
  returns to 0 (the rates stay). 0 means no revert; writing 0 cancels a pending revert, and
  another nonzero value applies from the next control write.
- Writable: StorCtl_Mod, InWRte, OutWRte (-100..100 %), MinRsvPct (0..100 %),
  InOutWRte_RvrtTms, and InOutWRte_WinTms and InOutWRte_RmpTms (stored and read back; the
  simulated inverter reaches a new setpoint at once). Other values get exception 3, other
  points exception 2. Ramps (WChaGra, WDisChaGra) are served, not simulated.
- Every accepted write is logged in order as (simulated time, "124.<point>", value) in
  `SiteSimulator.control_writes`.

The battery's lifetime charged/discharged energies exist only in the ground truth: model 802
has no energy counters.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.physics import (
    PhaseReading,
    SiteModel,
    SiteState,
    StorageControls,
    grid_frequency_hz,
    line_to_line_voltages,
    phase_reading,
    phase_voltages,
    pv_dc_side,
)
from simulator.registers import DeviceMap, Value
from simulator.sunspec import ServedModel, sunspec_device

SUNSPEC_BASE = 40000
METER_BASE = 50000
MANUFACTURER = "EMS Sim"
FIRMWARE = "1.0.0"

# Model 103 St
INVERTER_SLEEPING = 2
INVERTER_MPPT = 4
# ChaSt in models 124 and 802
CHARGE_STATUS_EMPTY = 2
CHARGE_STATUS_DISCHARGING = 3
CHARGE_STATUS_CHARGING = 4
CHARGE_STATUS_FULL = 5
CHARGE_STATUS_HOLDING = 6

# LFP battery, 16 cells in series: open-circuit voltage linear in SoC, 51.2 V nominal.
_BATTERY_CELLS = 16
_BATTERY_EMPTY_V = 46.4
_BATTERY_FULL_V = 54.4
_BATTERY_NOMINAL_V = 51.2
_STATE_OF_HEALTH_PCT = 98.0
_RAMP_PCT_PER_S = 100.0

COMMON = ServedModel(1, implemented=frozenset({"Mn", "Md", "Opt", "Vr", "SN", "DA"}))


def common_values(
    unit_id: int, model: str, options: str, serial: str, prefix: str = "1"
) -> dict[str, Value]:
    """Model 1's implemented points."""
    return {
        f"{prefix}.Mn": MANUFACTURER,
        f"{prefix}.Md": model,
        f"{prefix}.Opt": options,
        f"{prefix}.Vr": FIRMWARE,
        f"{prefix}.SN": serial,
        f"{prefix}.DA": unit_id,
    }


def _phases(key: str, values: tuple[float, float, float]) -> dict[str, float]:
    return {f"{key}{phase}": value for phase, value in zip("ABC", values, strict=True)}


# --- unit 2: PV inverter -------------------------------------------------------------------

INVERTER = ServedModel(
    103,
    scale_factors={
        "A_SF": -2,
        "V_SF": -1,
        "W_SF": 0,
        "Hz_SF": -2,
        "VA_SF": 0,
        "VAr_SF": 0,
        "PF_SF": -1,
        "WH_SF": 0,
        "DCA_SF": -2,
        "DCV_SF": -1,
        "DCW_SF": 0,
        "Tmp_SF": -1,
    },
    implemented=frozenset(
        {
            *("A", "AphA", "AphB", "AphC"),
            *("PPVphAB", "PPVphBC", "PPVphCA", "PhVphA", "PhVphB", "PhVphC"),
            *("W", "Hz", "VA", "VAr", "PF", "WH", "DCA", "DCV", "DCW", "TmpCab"),
            *("St", "Evt1", "Evt2"),
        }
    ),
    counters=frozenset({"WH"}),
)


def inverter_values(state: SiteState) -> dict[str, Value]:
    config = state.config
    pv_w = state.flows.pv_w
    voltages = phase_voltages(state)
    currents = tuple(pv_w / 3 / voltage for voltage in voltages)
    dc_voltage, dc_current = pv_dc_side(pv_w, config.pv_kwp)
    rated_w = config.pv_kwp * 1000.0
    return {
        **common_values(2, f"SimInverter {config.pv_kwp:g}K", "3-phase", "INV-0001"),
        "103.A": sum(currents),
        **_phases("103.Aph", (currents[0], currents[1], currents[2])),
        **_phases("103.PhVph", voltages),
        **dict(
            zip(
                ("103.PPVphAB", "103.PPVphBC", "103.PPVphCA"),
                line_to_line_voltages(voltages),
                strict=True,
            )
        ),
        "103.W": pv_w,
        "103.Hz": grid_frequency_hz(state),
        "103.VA": pv_w,  # unity power factor
        "103.VAr": 0.0,
        "103.PF": 100.0,
        "103.WH": state.counters_kwh["pv"] * 1000.0,
        "103.DCA": dc_current,
        "103.DCV": dc_voltage,
        "103.DCW": dc_voltage * dc_current,
        "103.TmpCab": 25.0 + (20.0 * pv_w / rated_w if rated_w > 0 else 0.0),
        "103.St": INVERTER_MPPT if pv_w > 0 else INVERTER_SLEEPING,
        "103.Evt1": 0,
        "103.Evt2": 0,
    }


PV_INVERTER = sunspec_device(
    "SunSpec PV inverter", 2, SUNSPEC_BASE, [COMMON, INVERTER], inverter_values
)


# --- unit 3: battery storage ---------------------------------------------------------------

STORAGE = ServedModel(
    124,
    scale_factors={
        "WChaMax_SF": 0,
        "WChaDisChaGra_SF": 0,
        "VAChaMax_SF": 0,
        "MinRsvPct_SF": -2,
        "ChaState_SF": -2,
        "StorAval_SF": -1,
        "InBatV_SF": -1,
        "InOutWRte_SF": -2,
    },
    implemented=frozenset(
        {
            *("WChaMax", "WChaGra", "WDisChaGra", "StorCtl_Mod", "VAChaMax", "MinRsvPct"),
            *("ChaState", "StorAval", "InBatV", "ChaSt", "OutWRte", "InWRte"),
            *("InOutWRte_WinTms", "InOutWRte_RvrtTms", "InOutWRte_RmpTms", "ChaGriSet"),
        }
    ),
    writable=frozenset(
        {
            *("StorCtl_Mod", "InWRte", "OutWRte", "MinRsvPct"),
            *("InOutWRte_WinTms", "InOutWRte_RvrtTms", "InOutWRte_RmpTms"),
        }
    ),
)
BATTERY = ServedModel(
    802,
    scale_factors={
        "AHRtg_SF": -1,
        "WHRtg_SF": 0,
        "WChaDisChaMax_SF": 0,
        "SoC_SF": -1,
        "DoD_SF": -1,
        "SoH_SF": 0,
        "V_SF": -1,
        "CellV_SF": -3,
        "A_SF": -1,
        "AMax_SF": -1,
        "W_SF": 0,
    },
    implemented=frozenset(
        {
            *("AHRtg", "WHRtg", "WChaRteMax", "WDisChaRteMax", "SoCMax", "SoCMin", "SoCRsvMin"),
            *("SoC", "DoD", "SoH", "NCyc", "ChaSt", "LocRemCtl", "AlmRst", "Typ", "State"),
            *("Evt1", "Evt2", "EvtVnd1", "EvtVnd2", "V", "CellVAvg", "A", "AChaMax"),
            *("ADisChaMax", "W", "SetOp", "SetInvState"),
        }
    ),
)
# Model 124's writable points and the StorageControls fields they set.
_CONTROL_FIELDS: Mapping[str, str] = {
    "124.StorCtl_Mod": "mode",
    "124.InWRte": "charge_rate_pct",
    "124.OutWRte": "discharge_rate_pct",
    "124.MinRsvPct": "reserve_pct",
    "124.InOutWRte_RvrtTms": "revert_s",
    "124.InOutWRte_WinTms": "window_s",
    "124.InOutWRte_RmpTms": "ramp_s",
}
# Writes that (re)start the revert timer.
_CONTROL_WRITES = frozenset({"124.StorCtl_Mod", "124.InWRte", "124.OutWRte"})
_LITHIUM_ION = 4
_CONNECTED = 3
_REMOTE_CONTROL = 0
_CONNECT = 1
_INVERTER_STARTED = 3
_CHARGE_FROM_GRID = 1


def battery_voltage(soc_pct: float) -> float:
    """Battery voltage at a state of charge."""
    return _BATTERY_EMPTY_V + (_BATTERY_FULL_V - _BATTERY_EMPTY_V) * soc_pct / 100.0


def charge_status(battery_w: float, soc_pct: float) -> int:
    """ChaSt: charging/discharging above the 1 W resolution, else full, empty or holding."""
    if battery_w <= -0.5:
        return CHARGE_STATUS_CHARGING
    if battery_w >= 0.5:
        return CHARGE_STATUS_DISCHARGING
    if soc_pct >= 99.95:
        return CHARGE_STATUS_FULL
    if soc_pct <= 0.05:
        return CHARGE_STATUS_EMPTY
    return CHARGE_STATUS_HOLDING


def storage_values(state: SiteState) -> dict[str, Value]:
    config = state.config
    controls = state.storage_controls
    soc = state.soc_pct
    battery_w = state.flows.battery_w
    voltage = battery_voltage(soc)
    capacity_wh = config.battery_capacity_kwh * 1000.0
    capacity_ah = capacity_wh / _BATTERY_NOMINAL_V
    status = charge_status(battery_w, soc)
    return {
        **common_values(3, f"SimBattery {config.battery_capacity_kwh:g}", "LFP 51.2V", "BAT-0001"),
        "124.WChaMax": config.battery_max_charge_w,
        "124.WChaGra": _RAMP_PCT_PER_S,
        "124.WDisChaGra": _RAMP_PCT_PER_S,
        "124.StorCtl_Mod": controls.mode,
        "124.VAChaMax": config.battery_max_charge_w,
        "124.MinRsvPct": controls.reserve_pct,
        "124.ChaState": soc,
        "124.StorAval": max(soc - controls.reserve_pct, 0.0) / 100.0 * capacity_ah,
        "124.InBatV": voltage,
        "124.ChaSt": status,
        "124.OutWRte": controls.discharge_rate_pct,
        "124.InWRte": controls.charge_rate_pct,
        "124.InOutWRte_WinTms": controls.window_s,
        "124.InOutWRte_RvrtTms": controls.revert_s,
        "124.InOutWRte_RmpTms": controls.ramp_s,
        "124.ChaGriSet": _CHARGE_FROM_GRID,
        "802.AHRtg": capacity_ah,
        "802.WHRtg": capacity_wh,
        "802.WChaRteMax": config.battery_max_charge_w,
        "802.WDisChaRteMax": config.battery_max_discharge_w,
        "802.SoCMax": 100.0,
        "802.SoCMin": 0.0,
        "802.SoCRsvMin": controls.reserve_pct,
        "802.SoC": soc,
        "802.DoD": 100.0 - soc,
        "802.SoH": _STATE_OF_HEALTH_PCT,
        "802.NCyc": int(state.counters_kwh["battery_discharged"] // config.battery_capacity_kwh),
        "802.ChaSt": status,
        "802.LocRemCtl": _REMOTE_CONTROL,
        "802.AlmRst": 0,
        "802.Typ": _LITHIUM_ION,
        "802.State": _CONNECTED,
        "802.Evt1": 0,
        "802.Evt2": 0,
        "802.EvtVnd1": 0,
        "802.EvtVnd2": 0,
        "802.V": voltage,
        "802.CellVAvg": voltage / _BATTERY_CELLS,
        "802.A": battery_w / voltage,
        "802.AChaMax": config.battery_max_charge_w / voltage,
        "802.ADisChaMax": config.battery_max_discharge_w / voltage,
        "802.W": battery_w,
        "802.SetOp": _CONNECT,
        "802.SetInvState": _INVERTER_STARTED,
    }


def apply_storage_writes(model: SiteModel, written: Mapping[str, Value]) -> None:
    """Model 124 writes to the battery inverter; ValueError rejects the whole write."""
    current = model.storage_controls
    settings: dict[str, float] = {}
    for key, value in written.items():
        if key not in _CONTROL_FIELDS:
            raise ValueError(f"{key} is not a control")
        if value is None or isinstance(value, str):
            raise ValueError(f"{key} cannot be written as not implemented")
        settings[_CONTROL_FIELDS[key]] = float(value)
    mode = settings.pop("mode", current.mode)
    controls = StorageControls(
        mode=int(mode),
        charge_rate_pct=settings.get("charge_rate_pct", current.charge_rate_pct),
        discharge_rate_pct=settings.get("discharge_rate_pct", current.discharge_rate_pct),
        reserve_pct=settings.get("reserve_pct", current.reserve_pct),
        revert_s=settings.get("revert_s", current.revert_s),
        window_s=settings.get("window_s", current.window_s),
        ramp_s=settings.get("ramp_s", current.ramp_s),
    )
    model.set_storage_controls(controls, control_write=not _CONTROL_WRITES.isdisjoint(written))


BATTERY_STORAGE = sunspec_device(
    "SunSpec battery storage",
    3,
    SUNSPEC_BASE,
    [COMMON, STORAGE, BATTERY],
    storage_values,
    apply_writes=apply_storage_writes,
)


# --- unit 4: meter on the PV inverter's output ---------------------------------------------

_TOTAL_ENERGIES = tuple(
    f"TotWh{direction}{phase}"
    for direction in ("Exp", "Imp")
    for phase in ("", "PhA", "PhB", "PhC")
)
METER = ServedModel(
    203,
    scale_factors={
        "A_SF": -2,
        "V_SF": -1,
        "Hz_SF": -2,
        "W_SF": 0,
        "VA_SF": 0,
        "VAR_SF": 0,
        "PF_SF": -1,
        "TotWh_SF": 0,
    },
    implemented=frozenset(
        {
            *("A", "AphA", "AphB", "AphC", "PhV", "PhVphA", "PhVphB", "PhVphC"),
            *("PPV", "PhVphAB", "PhVphBC", "PhVphCA", "Hz"),
            *("W", "WphA", "WphB", "WphC", "VA", "VAphA", "VAphB", "VAphC"),
            *("VAR", "VARphA", "VARphB", "VARphC", "PF", "PFphA", "PFphB", "PFphC"),
            *_TOTAL_ENERGIES,
            "Evt",
        }
    ),
    counters=frozenset(_TOTAL_ENERGIES),
)


def meter_203_values(
    prefix: str,
    state: SiteState,
    phases: tuple[PhaseReading, PhaseReading, PhaseReading],
    imported_wh: tuple[float, float, float, float],
    exported_wh: tuple[float, float, float, float],
) -> dict[str, Value]:
    """Model 203's implemented points for a meter reading `phases`; the energies are the
    total first, then phases A, B and C."""
    voltages = (phases[0].voltage_v, phases[1].voltage_v, phases[2].voltage_v)
    active_w = sum(phase.active_w for phase in phases)
    apparent = sum(phase.apparent_va for phase in phases)
    line_voltages = line_to_line_voltages(voltages)

    def of_phases(key: str, attribute: str, factor: float = 1.0) -> dict[str, float]:
        values = [getattr(phase, attribute) * factor for phase in phases]
        return _phases(f"{prefix}.{key}", (values[0], values[1], values[2]))

    def energies(direction: str, values: tuple[float, float, float, float]) -> dict[str, float]:
        names = ("", "PhA", "PhB", "PhC")
        return {f"{prefix}.TotWh{direction}{n}": v for n, v in zip(names, values, strict=True)}

    return {
        f"{prefix}.A": sum(phase.current_a for phase in phases),
        **of_phases("Aph", "current_a"),
        f"{prefix}.PhV": sum(voltages) / 3,
        **_phases(f"{prefix}.PhVph", voltages),
        f"{prefix}.PPV": sum(line_voltages) / 3,
        **dict(
            zip(
                (f"{prefix}.PhVphAB", f"{prefix}.PhVphBC", f"{prefix}.PhVphCA"),
                line_voltages,
                strict=True,
            )
        ),
        f"{prefix}.Hz": grid_frequency_hz(state),
        f"{prefix}.W": active_w,
        **of_phases("Wph", "active_w"),
        f"{prefix}.VA": apparent,
        **of_phases("VAph", "apparent_va"),
        f"{prefix}.VAR": sum(phase.reactive_var for phase in phases),
        **of_phases("VARph", "reactive_var"),
        f"{prefix}.PF": 100.0 * active_w / apparent if apparent > 0 else 100.0,
        **of_phases("PFph", "power_factor", 100.0),
        **energies("Exp", exported_wh),
        **energies("Imp", imported_wh),
        f"{prefix}.Evt": 0,
    }


def pv_meter_values(state: SiteState) -> dict[str, Value]:
    active_w = state.flows.pv_standby_w - state.flows.pv_w  # + import into the inverter
    voltages = phase_voltages(state)
    phases = (
        phase_reading(voltages[0], active_w / 3, 0.0),
        phase_reading(voltages[1], active_w / 3, 0.0),
        phase_reading(voltages[2], active_w / 3, 0.0),
    )
    exported_wh = state.counters_kwh["pv"] * 1000.0
    imported_wh = state.counters_kwh["pv_standby"] * 1000.0
    return {
        **common_values(4, "SimMeter 3P", "PV production", "MTR-0001"),
        **meter_203_values(
            "203",
            state,
            phases,
            imported_wh=(imported_wh, *(3 * (imported_wh / 3,))),
            exported_wh=(exported_wh, *(3 * (exported_wh / 3,))),
        ),
    }


PV_METER = sunspec_device("SunSpec PV meter", 4, METER_BASE, [COMMON, METER], pv_meter_values)

SUNSPEC_DEVICES: tuple[DeviceMap, ...] = (PV_INVERTER, BATTERY_STORAGE, PV_METER)
