"""Faults the simulated marketplace can inject: the ways real listing sites break under their crawlers.

A market built with ``MarketConfig(faults=...)`` renders its pages with those
faults, so data validation can be tested against realistic breakages: a
renamed field, a price in cents, kilometres labelled as miles, broken pages
served with status 200.  ``malformed_pages`` generates a corpus of broken
detail pages for testing that the spider's parser never crashes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carprice.market.generator import Listing, Market

RENAME_FIELD = "rename_field"
"""The site renames ``mileageFromOdometer`` to ``mileage`` (same value object), as after a template rewrite."""

REMOVE_FIELD = "remove_field"
"""The site stops publishing ``vehicleModelDate``, as when a form field is dropped."""

NEW_FIELD = "new_field"
"""The site starts publishing ``vehicleIdentificationNumber`` (a VIN) and ``emissionsCO2`` (g/km)."""

KM_LABELLED_MILES = "km_labelled_miles"
"""Mileages are kilometres but labelled as miles (unitCode ``SMI``, "miles" in text): a wrong unit default."""

PRICES_X100 = "prices_x100"
"""Every price is stated 100 times too high, as when cents are entered in a euro field."""

NEW_CURRENCY = "new_currency"
"""The site opens local markets: Masovia quotes prices in PLN, Vienna in CHF."""

BROKEN_PAGES = "broken_pages"
"""About 30% of detail pages are broken yet served with status 200: cut short, invalid JSON-LD, wrong types,
absurdly large numbers, or not UTF-8 (a CMS or CDN failing mid-page, a template or encoding bug)."""

DUPLICATE_FLOOD = "duplicate_flood"
"""Results pages list every listing three times under different URLs, as tracking and promo links do."""

FAULTS = frozenset({RENAME_FIELD, REMOVE_FIELD, NEW_FIELD, KM_LABELLED_MILES, PRICES_X100, NEW_CURRENCY,
                    BROKEN_PAGES, DUPLICATE_FLOOD})

# Region -> (currency, units per euro) once the site quotes local prices.
LOCAL_CURRENCIES = {"Masovia": ("PLN", 4.3), "Vienna": ("CHF", 0.94)}

BROKEN_SHARE = 0.3
# How a detail page breaks; the first two kinds change the data, the others the served bytes.
BREAKAGES = ("wrong_types", "huge_numbers", "truncated_html", "invalid_json_ld", "non_utf8")
_DATA_BREAKAGES = frozenset(BREAKAGES[:2])

# The extra kinds of malformed page in the robustness corpus, beyond the served breakages.
CORPUS_KINDS = BREAKAGES + (
    "empty_body", "no_structured_data", "json_ld_scalar", "car_without_offers", "offer_without_price",
    "nested_graph", "two_cars", "truncated_at_random", "not_html",
)

_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_CO2_PER_KW = {"petrol": 1.0, "diesel": 0.9, "hybrid": 0.65, "lpg": 0.95, "electric": 0.0}
_JSON_LD_OPEN = b'<script type="application/ld+json">'
# Byte sequences that are never valid UTF-8: stray bytes, a bad continuation, latin-1 "été".
_INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\x80", b"\xc3\x28", b"\xe9t\xe9", b"\xa0")


def validate_faults(names: Iterable[str]) -> frozenset[str]:
    """The fault names as a frozenset; ValueError naming any unknown fault and the valid ones."""
    faults = frozenset(names)
    unknown = sorted(faults - FAULTS)
    if unknown:
        label = "fault" if len(unknown) == 1 else "faults"
        raise ValueError(f"unknown {label} {', '.join(map(repr, unknown))}; valid faults: {', '.join(sorted(FAULTS))}")
    return faults


def parse_faults(text: str | None) -> frozenset[str]:
    """Fault names from a comma-separated list ("" or None for none); ValueError for an unknown name."""
    return validate_faults(name.strip() for name in (text or "").split(",") if name.strip())


def parse_fault_schedule(text: str | None) -> frozenset[str]:
    """Faults from a comma-separated list where ``name@DAY`` applies on that market day only."""
    entries = frozenset(entry.strip() for entry in (text or "").split(",") if entry.strip())
    for entry in entries:
        name, at, day = entry.partition("@")
        if at and not day.strip().lstrip("-").isdigit():
            raise ValueError(f"fault {entry!r}: the day after '@' must be a whole number, e.g. prices_x100@7")
        validate_faults([name.strip()])
    return entries


def faults_on_day(schedule: Iterable[str], day: int) -> frozenset[str]:
    """The faults of a schedule (see ``parse_fault_schedule``) that apply on market day ``day``."""
    out = set()
    for entry in schedule:
        name, at, on = entry.partition("@")
        if not at or int(on) == day:
            out.add(name.strip())
    return validate_faults(out)


# --- prices and structured data ------------------------------------------------------------

def stated_price(listing: Listing, day: int, faults: frozenset[str]) -> tuple[int, str]:
    """The asking price and its currency as the page states them, after the price faults."""
    amount, currency = listing.price_in_currency(day), listing.currency
    if NEW_CURRENCY in faults and listing.region in LOCAL_CURRENCIES:
        currency, rate = LOCAL_CURRENCIES[listing.region]
        # Sellers round a converted price to tens; an absurd price stays as typed.
        amount = int(amount * rate) if listing.absurd_price else int(round(amount * rate, -1))
    if PRICES_X100 in faults:
        amount *= 100
    return amount, currency


def vin(listing: Listing) -> str:
    """A 17-character VIN-like identifier of the listing's car (a repost shows its original's VIN)."""
    car_id = listing.id if listing.repost_of is None else listing.repost_of
    spec = listing.car.spec
    digest = hashlib.sha256(f"vin:{car_id}:{spec.make}:{spec.model}:{listing.car.model_year}".encode()).digest()
    return "".join(_VIN_ALPHABET[b % len(_VIN_ALPHABET)] for b in digest[:17])


def co2_g_per_km(listing: Listing) -> int:
    """The car's CO2 emissions in g/km, from its fuel and power (0 for electric cars)."""
    car = listing.car
    factor = _CO2_PER_KW.get(car.fuel, 1.0)
    return round((70 + 0.8 * car.power_kw) * factor) if factor else 0


def apply_data_faults(data: dict, listing: Listing, faults: frozenset[str], seed: int) -> dict:
    """The schema.org ``Car`` dict of a listing as the faulty site publishes it."""
    if not faults:
        return data
    data = dict(data)
    odometer = data.get("mileageFromOdometer")
    if KM_LABELLED_MILES in faults and isinstance(odometer, dict):
        km = listing.car.mileage_km
        value = f"{km:,} miles" if isinstance(odometer["value"], str) else km
        data["mileageFromOdometer"] = {**odometer, "value": value, "unitCode": "SMI"}
    if NEW_FIELD in faults:
        data["vehicleIdentificationNumber"] = vin(listing)
        data["emissionsCO2"] = co2_g_per_km(listing)
    if REMOVE_FIELD in faults:
        data.pop("vehicleModelDate", None)
    broken = _breakage(seed, listing.id) if BROKEN_PAGES in faults else None
    if broken and broken[0] in _DATA_BREAKAGES:
        data = break_data(data, *broken)
    if RENAME_FIELD in faults:
        data = {("mileage" if key == "mileageFromOdometer" else key): value for key, value in data.items()}
    return data


def apply_page_faults(body: bytes, listing: Listing, faults: frozenset[str], seed: int) -> bytes:
    """A rendered detail page as the faulty site serves it."""
    broken = _breakage(seed, listing.id) if BROKEN_PAGES in faults else None
    if broken and broken[0] not in _DATA_BREAKAGES:
        return break_html(body, *broken)
    return body


def breakage_kind(seed: int, listing_id: int) -> str | None:
    """How the detail page of ``listing_id`` is broken under ``broken_pages``, or None when it is sound."""
    broken = _breakage(seed, listing_id)
    return broken[0] if broken else None


def _breakage(seed: int, listing_id: int) -> tuple[str, random.Random] | None:
    # A string seed hashes the same in every process, so a page breaks the same way on every request.
    rng = random.Random(f"broken-page:{seed}:{listing_id}")
    if rng.random() >= BROKEN_SHARE:
        return None
    return rng.choice(BREAKAGES), rng


def break_data(data: dict, kind: str, rng: random.Random) -> dict:
    """``data`` with a field of the wrong type or an absurdly large price (``kind``: the variant drawn from ``rng``)."""
    data = dict(data)
    offer = dict(data.get("offers") or {})
    if kind == "wrong_types":
        variant = rng.randrange(4)
        if variant == 0:
            offer["price"] = {"@type": "MonetaryAmount", "amount": offer.get("price"),
                              "currency": offer.get("priceCurrency")}
        elif variant == 1:
            offer["price"] = [offer.get("price"), offer.get("priceCurrency")]
        elif variant == 2 and isinstance(data.get("mileageFromOdometer"), dict):
            odometer = data["mileageFromOdometer"]
            data["mileageFromOdometer"] = [odometer.get("value"), odometer.get("unitCode")]
        else:
            data["brand"] = 1000 + rng.randrange(9000)
    elif kind == "huge_numbers":
        digits = "".join(str(rng.randrange(10)) for _ in range(399))
        offer["price"] = rng.choice([1e308, f"{rng.randrange(1, 10)}{digits}", int(f"{rng.randrange(1, 10)}{digits}")])
    else:
        raise ValueError(f"not a data breakage: {kind!r}")
    if offer:
        data["offers"] = offer
    return data


def break_html(body: bytes, kind: str, rng: random.Random) -> bytes:
    """A rendered page cut short, with invalid JSON-LD, or not UTF-8 (by ``kind``, the variant drawn from ``rng``)."""
    if kind == "truncated_html":
        start, end = _structured_data_span(body)
        return body[:start + int((end - start) * rng.uniform(0.05, 0.95))]
    if kind == "invalid_json_ld":
        return _invalid_json_ld(body, rng)
    if kind == "non_utf8":
        if rng.random() < 0.5:
            text = body.decode("utf-8")
            text = text.replace('"description": "', '"description": "Très bon état. ', 1)
            text = text.replace('itemprop="description">', 'itemprop="description">Très bon état. ', 1)
            return text.encode("latin-1", "xmlcharrefreplace")
        start = body.index(b"<body>") + len(b"<body>")
        cuts = sorted(rng.randrange(start, len(body)) for _ in range(rng.randint(1, 4)))
        pieces, last = [], 0
        for cut in cuts:
            pieces += [body[last:cut], rng.choice(_INVALID_UTF8)]
            last = cut
        return b"".join(pieces) + body[last:]
    raise ValueError(f"not an HTML breakage: {kind!r}")


def _structured_data_span(body: bytes) -> tuple[int, int]:
    """Byte offsets of the JSON-LD script's text, or of the microdata when there is no JSON-LD."""
    start = body.find(_JSON_LD_OPEN)
    if start >= 0:
        return start + len(_JSON_LD_OPEN), body.index(b"</script>", start)
    start = body.find(b" itemscope")
    return (start, body.rindex(b"</article>")) if start >= 0 else (0, len(body))


def _invalid_json_ld(body: bytes, rng: random.Random) -> bytes:
    start = body.find(_JSON_LD_OPEN)
    if start < 0:
        # A page whose car is in microdata breaks through a site-wide JSON-LD block instead.
        broken = b'<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Organization", ' \
                 b'name: "AutoMarkt",}</script>'
        return body.replace(b"</head>", broken + b"</head>", 1)
    start += len(_JSON_LD_OPEN)
    end = body.index(b"</script>", start)
    script = body[start:end]
    variant = rng.randrange(4)
    if variant == 0:  # trailing comma
        script = script[:-1] + b", }"
    elif variant == 1:  # unquoted key
        script = script.replace(b'"model": ', b"model: ", 1)
    elif variant == 2:  # single quotes
        script = script.replace(b'"@type": "Car"', b"'@type': 'Car'", 1)
    else:  # missing comma between properties
        script = script.replace(b', "sku": ', b' "sku": ', 1)
    return body[:start] + script + body[end:]


# --- a corpus of malformed pages ------------------------------------------------------------

def malformed_pages(n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``n`` deterministic malformed detail pages as (url, body), cycling through ``CORPUS_KINDS``.

    Each URL ends with ``?malformed=<kind>&n=<index>``, so a failure names what broke it.
    """
    # The generator validates its config's faults with this module, so the market is imported late.
    from carprice.market.generator import Market, MarketConfig

    market = Market(MarketConfig.for_active_listings(200, seed=seed))
    day = 0
    ids = market.active_ids(day)
    for i in range(n):
        kind = CORPUS_KINDS[i % len(CORPUS_KINDS)]
        listing = market.listing(int(ids[i % len(ids)]))
        rng = random.Random(f"malformed-page:{seed}:{i}")
        url = f"http://127.0.0.1:8765{listing.path}?malformed={kind}&n={i}"
        yield url, _malformed_page(kind, market, listing, day, rng)


def _malformed_page(kind: str, market: Market, listing: Listing, day: int, rng: random.Random) -> bytes:
    from carprice.market import pages  # pages imports this module, so it is imported late too

    data = pages.car_data(market, listing, day)

    def render(structured: Any, page_format: str | None = "json-ld") -> bytes:
        return pages.render_detail(market, listing, day, structured, page_format).encode("utf-8")

    if kind in _DATA_BREAKAGES:
        return render(break_data(data, kind, rng), listing.page_format)
    if kind in BREAKAGES:
        return break_html(render(data, listing.page_format), kind, rng)
    if kind == "empty_body":
        return rng.choice([b"", b" ", b"\r\n", b"\n\n\t "])
    if kind == "no_structured_data":
        return render(None, None)
    if kind == "json_ld_scalar":
        return render(rng.choice([[], [1, 2, 3], ["Car", data["name"]], 42, 3.5, "Car", True, None]))
    if kind == "car_without_offers":
        data.pop("offers")
        return render(data, listing.page_format)
    if kind == "offer_without_price":
        offer = dict(data["offers"])
        price = rng.choice(["absent", None, "", "Price on request", "POA"])
        if price == "absent":
            del offer["price"]
        else:
            offer["price"] = price
        return render({**data, "offers": offer}, listing.page_format)
    if kind == "nested_graph":
        return _nested_graph_page(render(None, None), data, rng)
    if kind == "two_cars":
        other = pages.car_data(market, market.listing(int(rng.choice(market.active_ids(day)))), day)
        cars = [data, other] if rng.random() < 0.5 else [other, data]
        return render({"@context": "https://schema.org", "@graph": cars} if rng.random() < 0.5 else cars)
    if kind == "truncated_at_random":
        page = render(data, listing.page_format)
        return page[:rng.randrange(len(page))]
    if kind == "not_html":
        page = render(data, listing.page_format)
        return rng.choice([
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(64),
            gzip.compress(page, mtime=0),
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(64),
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(64),
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + rng.randbytes(64),
        ])
    raise ValueError(f"unknown malformed page kind {kind!r}")


def _nested_graph_page(shell: bytes, data: dict, rng: random.Random) -> bytes:
    """A page whose Car sits at the bottom of many nested ``@graph`` levels."""
    depth = rng.choice([2, 8, 40, 200, 2000])
    as_list = rng.random() < 0.75
    # Written by hand: json.dumps itself would recurse once per level.
    opening = '{"@context": "https://schema.org", "@graph": ' + ("[" if as_list else "")
    closing = ("]" if as_list else "") + "}"
    script = opening * depth + json.dumps(data, ensure_ascii=False) + closing * depth
    block = f'<script type="application/ld+json">{script}</script>'.encode()
    return shell.replace(b"</head>", block + b"</head>", 1)
