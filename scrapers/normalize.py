"""Pure normalization of the values sellers write: numbers, units, currencies, names, dates.

Each function returns None for a value it cannot read, so the caller decides
whether that loses the listing (a price) or only a field (a colour).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date

KM_PER_MILE = 1.609344
KW_PER_HP = 0.745700
KW_PER_PS = 0.735499

_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "CHF": "CHF", "zł": "PLN", "kr": "SEK"}

# Canonical make names keyed by a folded spelling (lower case, no accents, no punctuation).
_MAKES = (
    "Abarth", "Alfa Romeo", "Alpine", "Aston Martin", "Audi", "Bentley", "BMW", "BYD", "Cadillac",
    "Chevrolet", "Chrysler", "Citroën", "Cupra", "Dacia", "Daihatsu", "Dodge", "DS", "Ferrari", "Fiat",
    "Ford", "Genesis", "Honda", "Hyundai", "Infiniti", "Isuzu", "Iveco", "Jaguar", "Jeep", "Kia",
    "Lada", "Lamborghini", "Lancia", "Land Rover", "Lexus", "Lotus", "Maserati", "Mazda", "McLaren",
    "Mercedes-Benz", "MG", "Mini", "Mitsubishi", "NIO", "Nissan", "Opel", "Peugeot", "Polestar",
    "Porsche", "Renault", "Rolls-Royce", "Saab", "Seat", "Skoda", "Smart", "SsangYong", "Subaru",
    "Suzuki", "Tesla", "Toyota", "Vauxhall", "Volkswagen", "Volvo", "XPeng",
)
_MAKE_ALIASES = {
    "vw": "Volkswagen", "volkswagon": "Volkswagen", "mercedes": "Mercedes-Benz", "mb": "Mercedes-Benz",
    "merc": "Mercedes-Benz", "alfa": "Alfa Romeo", "landrover": "Land Rover", "range rover": "Land Rover",
    "chevy": "Chevrolet", "rollsroyce": "Rolls-Royce", "ds automobiles": "DS", "mercedesbenz": "Mercedes-Benz",
}

_FUELS = {
    "petrol": "petrol", "gasoline": "petrol", "gas": "petrol", "benzin": "petrol", "essence": "petrol",
    "diesel": "diesel", "hybrid": "hybrid", "plugin hybrid": "hybrid", "plug-in hybrid": "hybrid",
    "electric": "electric", "ev": "electric", "bev": "electric", "elektro": "electric",
    "lpg": "lpg", "autogas": "lpg", "cng": "cng", "natural gas": "cng", "hydrogen": "hydrogen",
}
_TRANSMISSIONS = {"automatic": "automatic", "auto": "automatic", "automatik": "automatic", "cvt": "automatic",
                  "dsg": "automatic", "manual": "manual", "manuell": "manual", "stick": "manual"}
_DEALER_TYPES = {"AutoDealer", "AutoDealership", "Organization", "LocalBusiness", "AutomotiveBusiness", "Corporation"}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9 ]", "", re.sub(r"[-_/]", " ", plain.lower())).strip()


_MAKE_INDEX = {_fold(m): m for m in _MAKES} | {_fold(m).replace(" ", ""): m for m in _MAKES}
_MAKE_INDEX |= {_fold(k): v for k, v in _MAKE_ALIASES.items()}


def canonical_make(name: str | None) -> str | None:
    """The canonical spelling of a make ("VW" -> "Volkswagen"); unknown makes keep their own spelling."""
    if not name or not name.strip():
        return None
    folded = _fold(name)
    return _MAKE_INDEX.get(folded) or _MAKE_INDEX.get(folded.replace(" ", "")) or " ".join(name.split())


def parse_number(text: str | float | int | None) -> float | None:
    """A number from seller text: "€ 12.500", "12,500.00", "12.500,50 EUR", "45,000 miles"."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(text) else None
    text = str(text).strip().replace("\u2212", "-")  # the typographic minus sign, too
    if _SCIENTIFIC.match(text):
        value = float(text)
        return value if math.isfinite(value) else None
    # A minus sign before the first digit (after currency signs and spaces) makes the number negative:
    # "-5000", "€ -5.000"; a dash between numbers ("5,000 - 6,000") does not.
    sign = -1.0 if re.match(r"^[^\d-]*-\s*\d", text) else 1.0
    digits = re.sub(r"[^0-9.,]", "", text)
    if not re.search(r"\d", digits):
        return None
    digits = digits.strip(".,")
    if "," in digits and "." in digits:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        digits = digits.replace(thousands, "").replace(decimal, ".")
    elif "," in digits or "." in digits:
        sep = "," if "," in digits else "."
        parts = digits.split(sep)
        if len(parts) > 2 or len(parts[-1]) == 3:
            digits = "".join(parts)
        else:
            digits = ".".join(parts)
    try:
        value = sign * float(digits)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def detect_currency(currency: str | None, price_text: str | None) -> str | None:
    """ISO currency code from the offer's priceCurrency, else from symbols in the price text."""
    if currency and currency.strip():
        code = currency.strip().upper()
        return _CURRENCY_SYMBOLS.get(code, code)
    text = price_text or ""
    for symbol, code in _CURRENCY_SYMBOLS.items():
        if symbol in text:
            return code
    match = re.search(r"\b([A-Z]{3})\b", text)
    return match.group(1) if match else None


def currency_code(code: str | None) -> bool:
    """Whether ``code`` is an ISO 4217 currency code (three capital letters); which ones have rates is the
    platform's business (carprice.money), not the spider's."""
    return bool(code) and re.fullmatch(r"[A-Z]{3}", code) is not None


def mileage_km(value: str | None, unit: str | None, default_unit: str = "km") -> float | None:
    """Odometer reading in kilometres from a value and a unit code or text (KMT, SMI, "miles").

    ``default_unit`` ("km" or "mi") is the unit of a reading that states none (a US site's bare numbers).
    """
    number = parse_number(value)
    if number is None:
        return None
    unit_text = f"{unit or ''} {value}".lower()
    if "smi" in unit_text or "mile" in unit_text or re.search(r"\bmi\b", unit_text):
        return round(number * KM_PER_MILE, 1)
    if "km" in unit_text or "kmt" in unit_text or "kilomet" in unit_text:
        return number
    return round(number * KM_PER_MILE, 1) if default_unit.lower() in ("mi", "mile", "miles", "smi") else number


def power_kw(value: str | None, unit: str | None) -> float | None:
    """Engine power in kW from kW, hp/BHP or PS."""
    number = parse_number(value)
    if number is None:
        return None
    unit_text = f"{unit or ''} {value}".lower()
    if "hp" in unit_text:  # hp, BHP
        return round(number * KW_PER_HP, 1)
    if "ps" in unit_text.split() or "n12" in unit_text:
        return round(number * KW_PER_PS, 1)
    return number


def vocabulary(value: str | None, table: dict[str, str]) -> str | None:
    if not value:
        return None
    key = value.strip().lower()
    return table.get(key, key)


def fuel(value: str | None) -> str | None:
    """Fuel type in the project's vocabulary (petrol, diesel, hybrid, electric, lpg, ...)."""
    return vocabulary(value, _FUELS)


def transmission(value: str | None) -> str | None:
    """Transmission as "automatic" or "manual" (other words kept lower-cased)."""
    return vocabulary(value, _TRANSMISSIONS)


def seller_type(schema_type: str | None) -> str | None:
    """"dealer" for businesses, "private" for people."""
    if not schema_type:
        return None
    word = schema_type.strip().lower()
    if schema_type in _DEALER_TYPES or word in ("dealer", "trade", "business"):
        return "dealer"
    return "private" if schema_type == "Person" or word in ("private", "person", "owner") else None


def model_year(value: str | None) -> int | None:
    """A four-digit year from "2017", "2017-05-01" or "05/2017"."""
    if not value:
        return None
    match = re.search(r"(19|20)\d\d", value)
    return int(match.group(0)) if match else None


def month_date(value: str | None) -> str | None:
    """An ISO date from "2017-05-12", "2017-05" or "05/2017" (day 1 when only the month is given)."""
    if not value:
        return None
    text = value.strip()
    for pattern, order in ((r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?", "ymd"), (r"^(\d{1,2})[/.](\d{4})$", "my"),
                           (r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$", "dmy")):
        match = re.match(pattern, text)
        if not match:
            continue
        groups = match.groups()
        if order == "ymd":
            y, m, d = int(groups[0]), int(groups[1]), int(groups[2] or 1)
        elif order == "my":
            y, m, d = int(groups[1]), int(groups[0]), 1
        else:
            y, m, d = int(groups[2]), int(groups[1]), int(groups[0])
        try:
            return date(y, m, d).isoformat()
        except ValueError:
            return None
    return None


def condition(value: str | None) -> str | None:
    """Condition word ("Like-New" -> "like new"); schema.org condition URLs become "new", "poor" or "good"."""
    if not value:
        return None
    text = value.strip()
    if "/" in text:
        word = text.rsplit("/", 1)[-1].replace("Condition", "").lower()
        return {"used": None, "new": "new", "damaged": "poor", "refurbished": "good"}.get(word, word)
    return re.sub(r"[\s_-]+", " ", text.lower()).strip() or None


# Title brands as US classifieds state them, keyed by a folded spelling.
_TITLE_STATUSES = {
    "clean": "clean", "clear": "clean", "salvage": "salvage", "salvaged": "salvage", "rebuilt": "rebuilt",
    "rebuild": "rebuilt", "reconstructed": "rebuilt", "restored": "rebuilt", "lien": "lien", "missing": "missing",
    "lost": "missing", "no title": "missing", "parts only": "parts only", "parts": "parts only",
    "non repairable": "parts only", "junk": "parts only",
}
_DRIVES = {
    "fwd": "fwd", "front wheel drive": "fwd", "front": "fwd", "rwd": "rwd", "rear wheel drive": "rwd", "rear": "rwd",
    "4wd": "4wd", "4x4": "4wd", "four wheel drive": "4wd", "awd": "awd", "all wheel drive": "awd",
    "4matic": "awd", "quattro": "awd", "xdrive": "awd",
}


def title_status(value: str | None) -> str | None:
    """Title status: clean, salvage, rebuilt, lien, missing or parts only (other words kept folded)."""
    if not value or not _fold(value):
        return None
    return _TITLE_STATUSES.get(_fold(value).removesuffix(" title").strip(), _fold(value))


def drive(value: str | None) -> str | None:
    """Driven wheels: fwd, rwd, 4wd or awd (other words kept folded)."""
    if not value or not _fold(value):
        return None
    return _DRIVES.get(_fold(value), _fold(value))


def cylinders(value: str | None) -> int | None:
    """Number of cylinders from "6 cylinders", "V8" or "4"; None for other text ("other", "rotary")."""
    match = re.fullmatch(r"\s*[vihw]?\s*(\d{1,2})\s*(cyl|cyls|cylinders?)?\s*", (value or "").lower())
    number = int(match.group(1)) if match else None
    # Road cars have 1 to 16; anything else is a misread (an engine size, a model number).
    return number if number is not None and 1 <= number <= 16 else None


# The warehouse stores whole numbers as 64-bit integers.
INT64_MAX = 2**63 - 1


def integer(value: str | None) -> int | None:
    """A whole number from seller text; None when there is none. May exceed 64 bits (listing_problem says so)."""
    number = parse_number(value)
    return int(number) if number is not None else None
