"""Exchange rates: the dated table that turns the price a page states into the installation's market currency.

A rate file is CSV with the header ``date,currency,per_eur``: from ``date`` on, until that currency's next row, one
euro buys ``per_eur`` units of ``currency`` (an ISO 4217 code). The euro is the base and needs no row (a row for it
must say 1). Lines starting with ``#`` and blank lines are skipped. A price is converted with the rates in force on
its listing's date; before a currency's first row there is no rate, so no later rate is ever used for an earlier
price.

The project ships ``carprice/money/rates.csv``; an installation overrides it with ``<data dir>/rates.csv``.
Pure functions: nothing here touches the warehouse (see ``carprice.money.store``).
"""

from __future__ import annotations

import bisect
import csv
import functools
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

BASE = "EUR"
SHIPPED_RATES = Path(__file__).with_name("rates.csv")
COLUMNS = ("date", "currency", "per_eur")
_CODE = re.compile(r"[A-Z]{3}")

# Prices a used car can plausibly be offered at, in euros (the base): a price outside is a placeholder or a typo.
# An installation in another currency converts the range with its newest rate; the bounds are orders of magnitude,
# so a rate's drift over months does not matter to them.
PLAUSIBLE_PRICE_EUR = (300.0, 500_000.0)


class RatesError(ValueError):
    """A rate file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Rate:
    """From ``valid_from`` on, one euro buys ``per_eur`` units of ``currency``."""

    valid_from: date
    currency: str
    per_eur: float


def parse_rates(text: str, name: str = "rates.csv") -> list[Rate]:
    """The rates of a rate file's text, sorted by currency and date; RatesError naming the line for bad input."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise RatesError(f"{name}: empty, expected a header {','.join(COLUMNS)}")
    header_line, header = lines[0][0], [c.strip().lower() for c in next(csv.reader([lines[0][1]]))]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RatesError(f"{name} line {header_line}: header {','.join(header)!r} lacks column(s) {', '.join(missing)} "
                         f"(expected {','.join(COLUMNS)})")
    at = {c: header.index(c) for c in COLUMNS}
    rates: dict[tuple[str, date], tuple[int, Rate]] = {}
    for number, line in lines[1:]:
        where = f"{name} line {number}"
        cells = next(csv.reader([line]))
        if len(cells) != len(header):
            raise RatesError(f"{where}: {len(cells)} values for {len(header)} columns: {line!r}")
        rate = _rate(cells[at["date"]].strip(), cells[at["currency"]].strip(), cells[at["per_eur"]].strip(), where)
        key = (rate.currency, rate.valid_from)
        if key in rates:
            raise RatesError(f"{where}: a second rate for {rate.currency} on {rate.valid_from} "
                             f"(line {rates[key][0]} has one)")
        rates[key] = (number, rate)
    return sorted((r for _, r in rates.values()), key=lambda r: (r.currency, r.valid_from))


def _rate(day_text: str, code: str, value_text: str, where: str) -> Rate:
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise RatesError(f"{where}: date {day_text!r} is not YYYY-MM-DD") from None
    if not _CODE.fullmatch(code):
        raise RatesError(f"{where}: currency {code!r} is not an ISO 4217 code (three capital letters, like USD)")
    try:
        value = float(value_text)
    except ValueError:
        raise RatesError(f"{where}: rate {value_text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise RatesError(f"{where}: rate {value_text!r} must be a positive number (units of {code} per euro)")
    if code == BASE and value != 1:
        raise RatesError(f"{where}: the euro is the base, its rate is 1, not {value_text!r}")
    return Rate(day, code, value)


def read_rates(path: Path) -> list[Rate]:
    """The rates of a rate file; RatesError naming the file and line for bad input."""
    return parse_rates(path.read_text(encoding="utf-8"), str(path))


def rates_file(installation_file: Path | None) -> Path:
    """The rate file an installation uses: its own when it has one, else the one the project ships."""
    return installation_file if installation_file is not None and installation_file.exists() else SHIPPED_RATES


@dataclass(frozen=True)
class Money:
    """An installation's market currency and the dated rates that convert any stated price into it."""

    currency: str = BASE
    rates: tuple[Rate, ...] = ()
    origin: str = "shipped"          # the file the rates came from, recorded with them in the warehouse
    _by_currency: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        for rate in sorted(self.rates, key=lambda r: r.valid_from):
            days, values = self._by_currency.setdefault(rate.currency, ([], []))
            days.append(rate.valid_from)
            values.append(rate.per_eur)

    @classmethod
    def default(cls) -> Money:
        """The euro market with the rates the project ships."""
        return _shipped_money()

    def per_eur(self, currency: str, day: date) -> float | None:
        """Units of ``currency`` one euro bought on ``day`` (the newest rate from on or before it), else None."""
        if currency == BASE:
            return 1.0
        days, values = self._by_currency.get(currency, ([], []))
        i = bisect.bisect_right(days, day)
        return values[i - 1] if i else None

    def convert(self, amount: float, currency: str, day: date) -> float | None:
        """``amount`` of ``currency`` in the market currency at the rates in force on ``day`` (None: no rate)."""
        if currency == self.currency:
            return amount
        source, market = self.per_eur(currency, day), self.per_eur(self.currency, day)
        return None if source is None or market is None else round(amount * market / source, 2)

    def newest_per_eur(self) -> float:
        """The market currency's newest rate (1 for the euro); RatesError when the rates have none for it."""
        if self.currency == BASE:
            return 1.0
        values = self._by_currency.get(self.currency, ([], []))[1]
        if not values:
            raise RatesError(f"{self.origin}: no rate for the market currency {self.currency}")
        return values[-1]

    @property
    def price_range(self) -> tuple[float, float]:
        """PLAUSIBLE_PRICE_EUR in the market currency, rounded to whole units."""
        scale = self.newest_per_eur()
        return tuple(float(round(bound * scale)) for bound in PLAUSIBLE_PRICE_EUR)


def load_money(currency: str = BASE, installation_file: Path | None = None) -> Money:
    """The Money of an installation: its market currency and its rate file's rates (else the shipped ones)."""
    path = rates_file(installation_file)
    currency = currency.strip().upper()
    if not _CODE.fullmatch(currency):
        raise RatesError(f"market currency {currency!r} is not an ISO 4217 code (three letters, like EUR or USD)")
    money = Money(currency, tuple(read_rates(path)), str(path))
    money.newest_per_eur()  # a market currency the file has no rate for is an error now, not at the first price
    return money



@functools.cache
def _shipped_money() -> Money:
    return load_money()
