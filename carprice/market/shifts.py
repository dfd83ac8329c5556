"""Market shifts: real changes in what one segment of cars is worth, as opposed to site faults.

A fuel-price shock makes electric cars dearer; a surge in demand lifts SUV prices.
``MarketShift("suv", 1.3, start_day=40)`` multiplies the fair price of SUVs
listed from day 40 on, ramping from 1 to 1.3 over a week.  The shift follows the
listing date, so a listing's price stays a pure function of (seed, id, config)
and cars already on sale before the shift keep their price.

Shifts have a compact text form for command lines: ``suv+30%@40,electric-15%@60~3``
is ``SEGMENT(+|-)PCT%@DAY`` with an optional ``~RAMP`` (days, default 7).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from carprice.market.catalogue import MODELS

# The segments a shift can name: the body types and fuels cars in the catalogue actually have.
SHIFT_BODIES = frozenset(m.body for m in MODELS)
SHIFT_FUELS = frozenset(fuel for m in MODELS for fuel in m.fuels)
SEGMENTS = SHIFT_BODIES | SHIFT_FUELS
DEFAULT_RAMP_DAYS = 7

_SPEC = re.compile(r"^(?P<segment>[a-z]+)(?P<pct>[+-]\d+(?:\.\d+)?)%@(?P<day>-?\d+)(?:~(?P<ramp>\d+))?$")
_SPEC_FORMAT = "SEGMENT(+|-)PCT%@DAY[~RAMP], e.g. suv+30%@40 or electric-15%@60~3"


@dataclass(frozen=True)
class MarketShift:
    """Cars of ``segment`` (a body type or a fuel) listed from ``start_day`` on are worth ``factor`` times more.

    The multiplier ramps linearly from 1 on ``start_day`` to ``factor`` on ``start_day + ramp_days``
    and stays there; ``ramp_days=0`` makes it a step on ``start_day``.
    """

    segment: str
    factor: float
    start_day: int
    ramp_days: int = DEFAULT_RAMP_DAYS

    def __post_init__(self) -> None:
        if self.segment not in SEGMENTS:
            raise ValueError(f"unknown segment {self.segment!r}; valid body types: {', '.join(sorted(SHIFT_BODIES))}; "
                             f"valid fuels: {', '.join(sorted(SHIFT_FUELS))}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) \
                or not (0 < self.factor < math.inf):
            raise ValueError(f"a shift factor must be a positive finite number, got {self.factor!r} "
                             f"for {self.segment!r}")
        object.__setattr__(self, "factor", float(self.factor))
        if isinstance(self.start_day, bool) or not isinstance(self.start_day, int):
            raise ValueError(f"start_day must be a whole day number, got {self.start_day!r}")
        if isinstance(self.ramp_days, bool) or not isinstance(self.ramp_days, int) or self.ramp_days < 0:
            raise ValueError(f"ramp_days must be a whole number of days >= 0, got {self.ramp_days!r}")

    def applies_to(self, body: str, fuel: str) -> bool:
        """Whether a car with this body type and fuel is in the shifted segment."""
        return self.segment in (body, fuel)

    def multiplier(self, listed_day: int) -> float:
        """The price multiplier for a car of this segment listed on ``listed_day``."""
        if listed_day < self.start_day:
            return 1.0
        if listed_day >= self.start_day + self.ramp_days:
            return self.factor
        return 1.0 + (self.factor - 1.0) * (listed_day - self.start_day) / self.ramp_days


def shift_multiplier(shifts: Iterable[MarketShift], body: str, fuel: str, listed_day: int) -> float:
    """The combined multiplier of every shift that covers this car; overlapping shifts compound."""
    multiplier = 1.0
    for shift in shifts:
        if shift.applies_to(body, fuel):
            multiplier *= shift.multiplier(listed_day)
    return multiplier


def validate_shifts(shifts: Iterable[MarketShift] | str | None) -> tuple[MarketShift, ...]:
    """The shifts as a tuple (a text spec is parsed); ValueError for anything that is not a MarketShift."""
    if shifts is None or isinstance(shifts, str):
        return parse_shifts(shifts)
    result = tuple(shifts)
    wrong = [s for s in result if not isinstance(s, MarketShift)]
    if wrong:
        raise ValueError(f"shifts must be MarketShift values, got {wrong[0]!r}")
    return result


def parse_shifts(text: str | None) -> tuple[MarketShift, ...]:
    """Shifts from a comma-separated spec like ``suv+30%@40,electric-15%@60~3`` ("" or None for none)."""
    shifts = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        match = _SPEC.match(part.lower())
        if not match:
            raise ValueError(f"bad market shift {part!r}; expected {_SPEC_FORMAT}")
        pct = Fraction(match["pct"])
        if pct <= -100:
            raise ValueError(f"bad market shift {part!r}: a price cannot fall by {match['pct'][1:]}% or more")
        ramp = int(match["ramp"]) if match["ramp"] is not None else DEFAULT_RAMP_DAYS
        try:
            shifts.append(MarketShift(match["segment"], _factor(pct), int(match["day"]), ramp))
        except ValueError as exc:
            raise ValueError(f"bad market shift {part!r}: {exc}") from None
    return tuple(shifts)


def format_shifts(shifts: Iterable[MarketShift]) -> str:
    """The compact text spec of ``shifts``; ``parse_shifts`` reads it back to the same shifts."""
    return ",".join(_format_one(shift) for shift in shifts)


def _format_one(shift: MarketShift) -> str:
    text = f"{shift.segment}{_percent(shift.factor)}%@{shift.start_day}"
    return text if shift.ramp_days == DEFAULT_RAMP_DAYS else f"{text}~{shift.ramp_days}"


def _percent(factor: float) -> str:
    # The fewest decimals that parse back to exactly this factor: 1.3 is "+30", not "+30.000000000000004".
    # A float is a finite binary fraction, so its exact percentage has finitely many decimals and this ends.
    exact = (Fraction(factor) - 1) * 100
    digits = 0
    while _factor(round(exact, digits)) != factor:
        digits += 1
    scaled = abs(round(exact, digits)) * 10**digits
    whole, frac = divmod(int(scaled), 10**digits)
    text = f"{whole}.{frac:0{digits}d}" if digits else str(whole)
    return ("-" if exact < 0 else "+") + text


def _factor(pct: Fraction) -> float:
    # Exact arithmetic then one rounding, so every float factor has a percentage that parses back to it.
    return float(1 + pct / 100)
