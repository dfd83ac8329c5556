"""The simulated marketplace: deterministic, realistic, messy, evolving, and served over HTTP."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from carprice.market.catalogue import MODELS, makes
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import ROBOTS_TXT, detail_page, index_page
from carprice.market.server import MarketplaceServer, main, running_marketplace
from carprice.market.shifts import MarketShift, format_shifts, parse_shifts, shift_multiplier


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(MarketConfig.for_active_listings(2000, seed=3))


@pytest.fixture(scope="module")
def listings(market):
    return market.listings_on(20)


def test_catalogue_is_broad():
    assert len(makes()) >= 30
    assert len(MODELS) >= 150


def test_same_seed_and_day_give_the_same_site():
    a, b = Market(MarketConfig.for_active_listings(500, seed=5)), Market(MarketConfig.for_active_listings(500, seed=5))
    assert np.array_equal(a.active_ids(4), b.active_ids(4))
    assert index_page(a, 4, 2) == index_page(b, 4, 2)
    first = int(a.active_ids(4)[0])
    assert detail_page(a, a.listing(first), 4) == detail_page(b, b.listing(first), 4)


def test_another_seed_gives_another_market():
    a, b = Market(MarketConfig.for_active_listings(500, seed=5)), Market(MarketConfig.for_active_listings(500, seed=6))
    same_id = int(a.active_ids(4)[0])
    assert a.listing(same_id).car != b.listing(same_id).car


def test_market_size_follows_the_config(market):
    sizes = [len(market.active_ids(day)) for day in (0, 50, 100)]
    assert all(1700 <= n <= 2300 for n in sizes), sizes


def test_older_and_higher_mileage_cars_cost_less(listings):
    sane = [lst for lst in listings if not lst.absurd_price and lst.car.damage_word is None]
    log_price = np.log([lst.asking_price_eur for lst in sane])
    log_new = np.log([lst.car.spec.new_price_eur for lst in sane])
    age = np.array([2026 - lst.car.model_year for lst in sane], dtype=float)
    km = np.array([lst.car.mileage_km for lst in sane], dtype=float) / 1000
    X = np.column_stack([np.ones_like(age), log_new, age, km])
    coef, *_ = np.linalg.lstsq(X, log_price, rcond=None)
    assert coef[1] > 0.5, "dearer models stay dearer used"
    assert coef[2] < 0, "older cars cost less at equal mileage"
    assert coef[3] < 0, "higher mileage costs less at equal age"
    young = np.median([p for p, a in zip(log_price - log_new, age) if a <= 3])
    old = np.median([p for p, a in zip(log_price - log_new, age) if a >= 10])
    assert young > old + 0.5


def test_seller_condition_trim_and_damage_move_the_price(market, listings):
    car = next(lst.car for lst in listings if lst.car.damage_word is None and not lst.car.trim_words)
    on = date(2026, 3, 1)
    price = lambda c, seller="dealer": market.fair_price(c, on, 1.0, seller)  # noqa: E731
    assert price(car, "dealer") > price(car, "private")
    assert price(replace(car, condition="excellent")) > price(replace(car, condition="poor"))
    assert price(replace(car, trim_words=("Premium", "Leather"))) > price(car)
    assert price(replace(car, damage_word="for parts")) < 0.5 * price(car)


def test_listings_are_messy_like_real_sites(listings):
    n = len(listings)
    share = lambda pred: sum(1 for lst in listings if pred(lst)) / n  # noqa: E731
    assert 0.08 < share(lambda lst: lst.page_format == "microdata") < 0.25
    assert share(lambda lst: lst.mileage_unit == "mi") > 0.03
    assert 0.002 < share(lambda lst: lst.absurd_price) < 0.03
    assert share(lambda lst: lst.repost_of is not None) > 0.005
    assert share(lambda lst: "power" in lst.missing) > 0.02
    assert share(lambda lst: lst.price_style != 0) > 0.5
    spellings = {lst.make_spelling for lst in listings if lst.car.spec.make == "Volkswagen"}
    assert len(spellings) >= 3, spellings


def test_market_evolves_by_day(market):
    day0, day10 = set(market.active_ids(0).tolist()), set(market.active_ids(10).tolist())
    assert day0 - day10, "some cars are sold"
    assert day10 - day0, "new cars are listed"


def test_price_cuts_only_lower_prices(listings):
    cut = [lst for lst in listings if lst.price_cuts]
    assert len(cut) > len(listings) * 0.2
    for lst in cut[:50]:
        assert lst.price_on(lst.listed_day + 200) < lst.price_on(lst.listed_day)


def test_prices_inflate_slowly(market):
    car_listing = market.listings_on(0)[0]
    early = market.fair_price(car_listing.car, date(2026, 1, 1), 1.0, "dealer")
    # The same car a year later is older, so compare against inflation alone.
    later_market = Market(MarketConfig(seed=3, inflation_per_year=0.0))
    flat = later_market.fair_price(car_listing.car, date(2026, 1, 1), 1.0, "dealer")
    assert early > flat


def test_new_models_appear_over_time():
    market = Market(MarketConfig.for_active_listings(3000, seed=9))
    future_models = {(m.make, m.model) for m in MODELS if m.first_year >= 2027}
    assert future_models, "the catalogue needs models that launch after the simulation starts"
    on_day0 = {(lst.car.spec.make, lst.car.spec.model) for lst in market.listings_on(0)}
    on_day330 = {(lst.car.spec.make, lst.car.spec.model) for lst in market.listings_on(330)}
    assert not on_day0 & future_models
    assert on_day330 & future_models


@pytest.mark.integration  # a real server on loopback
def test_server_serves_pages_robots_and_404s():
    market = Market(MarketConfig.for_active_listings(300, seed=2))
    server = MarketplaceServer(market, day=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def get(path):
            with urllib.request.urlopen(server.url + path, timeout=10) as resp:
                return resp.status, resp.read().decode("utf-8")

        assert get("/robots.txt") == (200, ROBOTS_TXT)
        status, body = get("/cars?page=1")
        assert status == 200 and 'rel="next"' in body and "ItemList" in body
        listing = market.listing(int(market.active_ids(5)[0]))
        status, body = get(listing.path)
        assert (status == 200 and "application/ld+json" in body) or "itemscope" in body
        sold = next(i for i in range(10_000) if not market.is_active(i, 5))
        missing = ((f"/cars/{sold}-gone", 404), ("/nope", 404), ("/cars?page=abc", 400), ("/cars?page=999", 404))
        for path, code in missing:
            with pytest.raises(urllib.error.HTTPError) as err:
                get(path)
            assert err.value.code == code
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration  # a real server process
def test_marketplace_process_starts_and_stops():
    with running_marketplace(seed=1, day=0, listings=200) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/robots.txt", timeout=10) as resp:
            assert resp.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/robots.txt", timeout=2)


# --- market shifts: a segment's prices move from some day on ---------------------------------------

SHIFT_BASE = MarketConfig.for_active_listings(500, seed=4)
SUV_SHIFT = MarketShift("suv", 1.3, start_day=10, ramp_days=4)


def _twins(day: int, shifts=(SUV_SHIFT,)) -> list[tuple]:
    """(unshifted, shifted) pairs of every listing listed on ``day`` in two markets that differ only by ``shifts``."""
    base, shifted = Market(SHIFT_BASE), Market(replace(SHIFT_BASE, shifts=shifts))
    first = (day + SHIFT_BASE.warmup_days) * SHIFT_BASE.daily_new
    pairs = [(base.listing(i), shifted.listing(i)) for i in range(first, first + SHIFT_BASE.daily_new)]
    assert all(b.listed_day == day for b, _ in pairs)
    return pairs


def _assert_scaled(base, shifted, factor: float) -> None:
    assert shifted.fair_price_eur == pytest.approx(factor * base.fair_price_eur, rel=1e-12)
    if not base.absurd_price:
        assert shifted.asking_price_eur == pytest.approx(factor * base.asking_price_eur, rel=1e-12)
    same_otherwise = replace(shifted, fair_price_eur=base.fair_price_eur, asking_price_eur=base.asking_price_eur)
    assert same_otherwise == base, "a shift changes the price and nothing else"


def test_shifted_segment_costs_factor_times_more_once_the_ramp_is_over():
    pairs = [pair for day in range(14, 24) for pair in _twins(day)]
    suvs = [(b, s) for b, s in pairs if b.car.spec.body == "suv"]
    others = [(b, s) for b, s in pairs if b.car.spec.body != "suv"]
    assert len(suvs) >= 20 and len(others) >= 20
    for base, shifted in suvs:
        _assert_scaled(base, shifted, 1.3)
    assert all(base == shifted for base, shifted in others), "other segments keep their price"


def test_listings_from_before_the_shift_keep_their_price():
    for day in (0, 5, 9, 10):  # on start_day the ramp is still at 1
        assert all(base == shifted for base, shifted in _twins(day))


def test_the_ramp_goes_linearly_from_one_to_the_factor():
    midpoint = [(b, s) for b, s in _twins(12) if b.car.spec.body == "suv"]
    assert midpoint
    for base, shifted in midpoint:
        _assert_scaled(base, shifted, 1.15)
    assert [SUV_SHIFT.multiplier(d) for d in (9, 10, 11, 12, 13, 14, 99)] == pytest.approx(
        [1.0, 1.0, 1.075, 1.15, 1.225, 1.3, 1.3])
    step = MarketShift("electric", 0.8, start_day=5, ramp_days=0)
    assert (step.multiplier(4), step.multiplier(5)) == (1.0, 0.8)


def test_a_fuel_can_be_shifted_and_overlapping_shifts_compound():
    ev = MarketShift("electric", 0.85, start_day=0, ramp_days=0)
    electric = [(b, s) for b, s in _twins(3, shifts=(ev,)) if b.car.fuel == "electric"]
    assert electric
    for base, shifted in electric:
        _assert_scaled(base, shifted, 0.85)
    assert shift_multiplier((SUV_SHIFT, ev), "suv", "electric", 30) == pytest.approx(1.3 * 0.85)
    assert shift_multiplier((SUV_SHIFT, ev), "sedan", "petrol", 30) == 1.0


def test_electric_cars_are_a_fair_share_of_the_market_for_a_shift_demo(listings):
    # A demo shift should move enough listings to show up in the metrics but not the whole market.
    share = sum(1 for lst in listings if lst.car.fuel == "electric") / len(listings)
    assert 0.15 < share < 0.35, share


@pytest.mark.parametrize("spec, expected", [
    ("suv+30%@40", (MarketShift("suv", 1.3, 40),)),
    ("suv+30%@40,electric-15%@60", (MarketShift("suv", 1.3, 40), MarketShift("electric", 0.85, 60))),
    (" SUV+30%@40~3 , ", (MarketShift("suv", 1.3, 40, ramp_days=3),)),
    ("van+12.5%@-3~0", (MarketShift("van", 1.125, -3, ramp_days=0),)),
    ("", ()),
])
def test_shift_specs_parse(spec, expected):
    assert parse_shifts(spec) == expected


@pytest.mark.parametrize("spec", ["suv+30%@40", "suv+30%@40,electric-15%@60~3", "van+12.5%@-3~0", "lpg-0.1%@0~14"])
def test_shift_specs_round_trip(spec):
    assert format_shifts(parse_shifts(spec)) == spec
    assert parse_shifts(format_shifts(parse_shifts(spec))) == parse_shifts(spec)


def test_any_shift_round_trips_through_its_spec():
    shifts = (MarketShift("suv", 1 / 3, 7), MarketShift("hybrid", 2, 0, 1), MarketShift("mpv", 1.0000001, 5))
    assert parse_shifts(format_shifts(shifts)) == shifts


@pytest.mark.parametrize("spec, message", [
    ("suv+30@40", "bad market shift 'suv+30@40'; expected SEGMENT(+|-)PCT%@DAY"),
    ("suv+30%", "expected SEGMENT(+|-)PCT%@DAY"),
    ("suv*2%@40", "expected SEGMENT(+|-)PCT%@DAY"),
    ("suv+30%@40~x", "expected SEGMENT(+|-)PCT%@DAY"),
    ("truck+30%@40", "unknown segment 'truck'; valid body types: convertible, coupe, estate, hatchback, mpv, pickup,"
                     " sedan, suv, van; valid fuels: diesel, electric, hybrid, lpg, petrol"),
    ("suv-100%@40", "a price cannot fall by 100% or more"),
])
def test_bad_shift_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError) as err:
        parse_shifts(spec)
    assert message in str(err.value)


def test_shifts_are_validated_and_the_config_stays_hashable():
    for bad in (("Suv", 1.3, 1), ("suv", 0, 1), ("suv", float("inf"), 1), ("suv", 1.3, 1.5), ("suv", 1.3, 1, -1)):
        with pytest.raises(ValueError):
            MarketShift(*bad)
    config = MarketConfig(shifts=[MarketShift("suv", 1.3, 40)])
    assert config.shifts == (MarketShift("suv", 1.3, 40),) and hash(config) == hash(MarketConfig(shifts="suv+30%@40"))
    with pytest.raises(ValueError, match="MarketShift"):
        MarketConfig(shifts=["suv+30%@40"])


def test_server_cli_rejects_a_bad_shift_spec(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--shifts", "truck+30%@40"])
    assert exit_.value.code == 2
    assert "unknown segment 'truck'" in capsys.readouterr().err


@pytest.mark.integration  # a real server process
def test_marketplace_process_serves_the_shifted_market():
    shifts = (MarketShift("suv", 2.0, start_day=0, ramp_days=0),)
    shifted = Market(MarketConfig.for_active_listings(200, seed=1, shifts=shifts))
    plain = Market(MarketConfig.for_active_listings(200, seed=1))
    suv = next(shifted.listing(int(i)) for i in shifted.active_ids(3)
               if shifted.listing(int(i)).car.spec.body == "suv" and shifted.listing(int(i)).listed_day >= 0)
    with (running_marketplace(seed=1, day=3, listings=200, shifts=shifts) as url,
          urllib.request.urlopen(url + suv.path, timeout=10) as resp):
        served = resp.read()
    assert served == detail_page(shifted, suv, 3, url)  # its pages name their canonical URL at its own address
    assert served != detail_page(plain, plain.listing(suv.id), 3)
