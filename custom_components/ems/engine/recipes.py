"""Control recipes: how a device turns a battery setpoint into register writes, as profile data.

The policy (control/policy.py) is the same for every battery: it resolves a command into a
`Setpoint`, a signed power or auto. A recipe says how one device takes that setpoint: which
kinds of setpoint it can take, the writes for each kind in order, which registers are persisted
(EEPROM or flash) and so written only when their value changes, how the device falls back when
its controller goes quiet, and where a write reads back. control/recipe.py plans the writes;
profiles/recipe_schema.py reads a recipe from YAML and checks it against the profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SetpointKind(StrEnum):
    """What a setpoint asks of the device."""

    AUTO = "auto"  # the device's own logic: also the release sequence
    HOLD = "hold"  # neither charge nor discharge
    CHARGE = "charge"  # charge at a power
    DISCHARGE = "discharge"  # discharge at a power


class ValueSource(StrEnum):
    """Where a write's value comes from, when it is not a fixed number."""

    POWER = "power"  # the setpoint's magnitude, in the channel's unit (W, kW, % of a rating)
    SIGNED_POWER = "signed_power"  # + discharge / - charge, flipped by the recipe's sign
    FALLBACK = "fallback"  # the fallback time (revert timer or duration), in the channel's unit


class FallbackKind(StrEnum):
    """What the device does by itself when ems stops writing."""

    REVERT_TIMER = "revert_timer"  # a timer that control writes restart; then its own logic
    DURATION = "duration"  # a forced mode runs for the time written with it
    NONE = "none"  # stays as told: ems re-asserts within the window and releases on stop


class PowerSign(StrEnum):
    """How a signed power register counts."""

    DISCHARGE_POSITIVE = "discharge_positive"  # ems's own convention (DESIGN.md section 3)
    CHARGE_POSITIVE = "charge_positive"


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteStep:
    """One register write of a sequence: a fixed value, or one from a `ValueSource`."""

    channel: str
    value: float | None = None
    source: ValueSource | None = None
    # The channel's unit, from the profile: what a power or a time is converted into.
    unit: str | None = None
    # Round what is written to this step (0.01 for a rate in 0.01 %); None leaves it to the
    # register's own resolution.
    resolution: float | None = None
    # Writing this step restarts the device's fallback timer: a re-assertion writes only these.
    rearm: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Readback:
    """Where a written value can be read again, and how close it must come."""

    channel: str
    tolerance: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Fallback:
    """The device's own guard against a controller that went quiet."""

    kind: FallbackKind
    # REVERT_TIMER and DURATION: the longest time the register takes, in seconds.
    max_s: int = 0
    # NONE: the vendor's documented window within which ems re-asserts (0 = only on change).
    window_s: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ControlRecipe:
    """How one device model is steered; checked against its profile when it loads."""

    source: str  # the vendor document and its version, and the cross-check
    sequences: Mapping[SetpointKind, tuple[WriteStep, ...]]
    fallback: Fallback
    persisted: frozenset[str] = frozenset()
    # A written channel's readback; absent: the register itself, exactly; None: write-only.
    readback: Mapping[str, Readback | None] = field(default_factory=dict)
    # The channels that hold the device's charge and discharge ratings, first found first:
    # what a power in % is a share of, and the policy's device limits.
    charge_rating: tuple[str, ...] = ()
    discharge_rating: tuple[str, ...] = ()
    sign: PowerSign = PowerSign.DISCHARGE_POSITIVE
    charge_from_grid: bool = True

    def takes(self, kind: SetpointKind) -> bool:
        """Whether the device has a write sequence for this kind of setpoint."""
        return kind in self.sequences

    def at_power(self, kind: SetpointKind) -> bool:
        """Whether the kind's sequence carries a power (charge at P), not just a direction."""
        return any(
            step.source in (ValueSource.POWER, ValueSource.SIGNED_POWER)
            for step in self.sequences.get(kind, ())
        )

    @property
    def channels(self) -> frozenset[str]:
        """Every channel the recipe writes."""
        return frozenset(step.channel for steps in self.sequences.values() for step in steps)
