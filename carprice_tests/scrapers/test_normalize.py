"""Normalizers, table by table: what sellers write in, the project's values out; then why a listing is unusable."""

from __future__ import annotations

import pytest

from scrapers import normalize
from scrapers.items import CarListing
from scrapers.pipelines import listing_problem, normalize_listing


@pytest.mark.parametrize(("text", "expected"), [
    ("€ 12.500", 12500.0),       # dot as thousands separator
    ("12500 EUR", 12500.0),
    ("12,500.00", 12500.0),      # comma thousands, dot decimals
    ("12.500,50", 12500.5),      # dot thousands, comma decimals
    ("EUR 12,500", 12500.0),
    ("£9,995", 9995.0),
    ("45,000 miles", 45000.0),
    ("12,5", 12.5),              # a lone comma before 1-2 digits is a decimal comma
    ("1.234.567", 1234567.0),    # repeated separator is thousands
    ("1.5", 1.5),
    ("abc", None),
    ("", None),
    (None, None),
    (12.5, 12.5),
    (7, 7.0),
])
def test_parse_number(text, expected):
    assert normalize.parse_number(text) == expected


@pytest.mark.parametrize(("currency", "price_text", "expected"), [
    ("GBP", "12,500", "GBP"),
    (" gbp ", None, "GBP"),      # trimmed and upper-cased
    ("€", None, "EUR"),          # a symbol in priceCurrency
    ("EUR", "£9,995", "EUR"),    # priceCurrency wins over the text
    (None, "£9,995", "GBP"),
    (None, "€ 12.500", "EUR"),
    (None, "12500 EUR", "EUR"),
    (None, "CHF 12,500", "CHF"),
    ("", "$12,500", "USD"),
    (None, "12.500 zł", "PLN"),
    (None, "12500", None),
    (None, None, None),
])
def test_detect_currency(currency, price_text, expected):
    assert normalize.detect_currency(currency, price_text) == expected


@pytest.mark.parametrize(("value", "unit", "default_unit", "expected"), [
    ("45,000", None, "km", 45000.0),
    ("45,000", None, "mi", 72420.5),          # a US site's bare number is miles
    ("45,000 km", None, "mi", 45000.0),       # ... unless the page says km
    ("45,000", "KMT", "mi", 45000.0),
    ("45,000", "SMI", "km", 72420.5),
    ("45,000 miles", None, "km", 72420.5),
])
def test_mileage_without_a_unit_is_in_the_sources_unit(value, unit, default_unit, expected):
    assert normalize.mileage_km(value, unit, default_unit) == expected


def test_a_price_without_currency_takes_the_sources_currency():
    item = normalize_listing(CarListing(url="https://cars.example/1", source="test", scraped_at="2026-01-15T08:00",
                                        page_format="json-ld", **{**GOOD_RAW, "price_raw": "12500",
                                                                   "currency_raw": None, "mileage_unit_raw": None}),
                             default_currency="usd", distance_unit="mi")
    assert (item.price, item.currency, item.mileage_km) == (12500.0, "USD", 72420.5)
    assert listing_problem(item) is None


@pytest.mark.parametrize(("value", "unit", "expected"), [
    ("45000", "SMI", 72420.5),
    ("45000", "miles", 72420.5),
    ("45,000 miles", None, 72420.5),
    ("45000 mi", None, 72420.5),
    ("45000", "KMT", 45000.0),
    ("45,000 km", "KMT", 45000.0),
    ("45000", None, 45000.0),    # no unit: kilometres
    ("see photos", "KMT", None),
    (None, "SMI", None),
])
def test_mileage_km(value, unit, expected):
    assert normalize.mileage_km(value, unit) == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    ("110", "KWT", 110.0),
    ("150", "BHP", 111.9),
    ("150", "hp", 111.9),
    ("150", "PS", 110.3),
    ("150 PS", None, 110.3),
    ("150", "N12", 110.3),       # UN/CEFACT code for metric horsepower
    ("110", None, 110.0),        # no unit: kilowatts
    ("n/a", "KWT", None),
])
def test_power_kw(value, unit, expected):
    assert normalize.power_kw(value, unit) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("VW", "Volkswagen"),
    ("VOLKSWAGEN", "Volkswagen"),
    ("Mercedes", "Mercedes-Benz"),
    ("Mercedes Benz", "Mercedes-Benz"),
    ("MERCEDES-BENZ", "Mercedes-Benz"),
    ("Citroen", "Citroën"),
    ("CITROEN", "Citroën"),
    ("Landrover", "Land Rover"),
    ("bmw", "BMW"),
    ("Škoda", "Skoda"),
    ("Alfa", "Alfa Romeo"),
    ("Trabant", "Trabant"),           # unknown makes keep their own spelling
    ("  Trabant   601 ", "Trabant 601"),  # ... with whitespace tidied
    ("", None),
    ("   ", None),
    (None, None),
])
def test_canonical_make(name, expected):
    assert normalize.canonical_make(name) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("Petrol", "petrol"),
    ("Gasoline", "petrol"),
    ("Benzin", "petrol"),
    ("DIESEL", "diesel"),
    (" Plug-in Hybrid ", "hybrid"),
    ("EV", "electric"),
    ("LPG", "lpg"),
    ("Natural gas", "cng"),
    ("Wood gas", "wood gas"),    # unknown words kept, lower-cased
    ("", None),
    (None, None),
])
def test_fuel(value, expected):
    assert normalize.fuel(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("Automatic", "automatic"),
    ("AUTOMATIC", "automatic"),
    ("DSG", "automatic"),
    ("CVT", "automatic"),
    ("Automatik", "automatic"),
    ("Manual", "manual"),
    ("MANUAL", "manual"),
    ("Semi-automatic", "semi-automatic"),
    ("", None),
    (None, None),
])
def test_transmission(value, expected):
    assert normalize.transmission(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2017", 2017),
    ("2017-05-01", 2017),
    ("05/2017", 2017),
    ("MY1999", 1999),
    ("new", None),
    ("", None),
    (None, None),
])
def test_model_year(value, expected):
    assert normalize.model_year(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2017-05-12", "2017-05-12"),
    ("2017-05-12T10:00:00Z", "2017-05-12"),
    ("2017-05", "2017-05-01"),
    ("05/2017", "2017-05-01"),
    ("5/2017", "2017-05-01"),
    ("12.05.2017", "2017-05-12"),
    ("garbage", None),
    ("2017-13-01", None),        # no month 13
    ("2017-02-30", None),
    ("13/2017", None),
    ("", None),
    (None, None),
])
def test_month_date(value, expected):
    assert normalize.month_date(value) == expected


@pytest.mark.parametrize(("schema_type", "expected"), [
    ("AutoDealer", "dealer"),
    ("AutomotiveBusiness", "dealer"),
    ("Organization", "dealer"),
    ("LocalBusiness", "dealer"),
    ("Person", "private"),
    ("Thing", None),
    ("", None),
    (None, None),
])
def test_seller_type(schema_type, expected):
    assert normalize.seller_type(schema_type) == expected


# --- why a listing is unusable ----------------------------------------------------------------

GOOD_RAW = dict(make_raw="VW", model="Golf", price_raw="€ 12.500", currency_raw="EUR",
                mileage_raw="45,000", mileage_unit_raw="KMT")


def normalized(**raw) -> CarListing:
    item = CarListing(url="https://cars.example/1", source="test", scraped_at="2026-01-15T08:00:00+00:00",
                      page_format="json-ld", **{**GOOD_RAW, **raw})
    return normalize_listing(item)


def test_a_good_listing_has_no_problem():
    item = normalized()
    assert (item.make, item.price, item.currency, item.mileage_km) == ("Volkswagen", 12500.0, "EUR", 45000.0)
    assert listing_problem(item) is None


@pytest.mark.parametrize(("raw", "problem"), [
    ({"make_raw": None}, ("missing make", "")),
    ({"make_raw": "  "}, ("missing make", "")),
    ({"model": None}, ("missing model", "")),
    ({"price_raw": None}, ("missing price", "")),
    ({"price_raw": "on request"}, ("unreadable price", "'on request'")),
    ({"price_raw": "12500", "currency_raw": None}, ("price without currency", "'12500'")),
    ({"currency_raw": "Euro"}, ("unreadable currency", "'EURO'")),
    ({"price_raw": "¥ 1,250,000", "currency_raw": None}, ("price without currency", "'¥ 1,250,000'")),
    ({"mileage_raw": "see photos"}, ("unreadable mileage", "'see photos'")),
    ({"make_raw": None, "price_raw": None}, ("missing make", "")),  # the first problem is the one reported
    ({"price_raw": "-5000"}, ("negative price", "'-5000'")),
    ({"price_raw": "€ −12.500"}, ("negative price", "'€ −12.500'")),
    ({"mileage_raw": "-80000"}, ("negative mileage", "'-80000'")),
    ({"doors_raw": "1e30"}, ("doors out of range", "'1e30'")),
])
def test_listing_problem(raw, problem):
    assert listing_problem(normalized(**raw)) == problem


def test_a_problem_is_a_reason_category_with_the_raw_value_cut_in_the_detail():
    problem = listing_problem(normalized(price_raw="1" * 400 + " Euro, call us"))
    assert problem.reason == "unreadable price"
    assert problem.detail.startswith("'1111") and problem.detail.endswith("... (416 chars)")
    assert len(problem.detail) < 150


@pytest.mark.parametrize(("text", "expected"), [
    ("-5000", -5000.0), ("€ -5.000", -5000.0), ("− 80,000 km", -80000.0), ("-1e3", -1000.0),
    ("12.500 €", 12500.0), ("-", None),
])
def test_minus_signs_are_kept(text, expected):
    assert normalize.parse_number(text) == expected


def test_a_whole_number_beyond_64_bits_is_kept_for_listing_problem_to_reject():
    assert normalize.integer("1e30") > normalize.INT64_MAX and normalize.integer("4") == 4


def test_missing_mileage_is_not_a_problem():
    assert listing_problem(normalized(mileage_raw=None, mileage_unit_raw=None)) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("Clean", "clean"), ("clean title", "clean"), ("Salvage", "salvage"), ("REBUILT", "rebuilt"),
    ("lien", "lien"), ("Missing", "missing"), ("parts only", "parts only"), ("Parts-Only", "parts only"),
    ("bonded", "bonded"),  # unknown words are kept, folded
    ("", None), (None, None),
])
def test_title_status(text, expected):
    assert normalize.title_status(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("FWD", "fwd"), ("front-wheel drive", "fwd"), ("rwd", "rwd"), ("4x4", "4wd"), ("4WD", "4wd"),
    ("All Wheel Drive", "awd"), ("quattro", "awd"), (" ", None), (None, None),
])
def test_drive(text, expected):
    assert normalize.drive(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("8 cylinders", 8), ("V6", 6), ("4", 4), ("10 cyl", 10), ("other", None), ("2.0L", None), ("99", None),
    (None, None),
])
def test_cylinders(text, expected):
    assert normalize.cylinders(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Like-New", "like new"), ("like_new", "like new"), ("Excellent", "excellent"), ("fair", "fair"),
    ("https://schema.org/NewCondition", "new"), ("https://schema.org/UsedCondition", None), ("  ", None),
])
def test_condition_words(text, expected):
    assert normalize.condition(text) == expected
