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
from carprice.market.server import MarketplaceServer, running_marketplace


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
        assert status == 200 and "application/ld+json" in body or "itemscope" in body
        sold = next(i for i in range(10_000) if not market.is_active(i, 5))
        for path, code in ((f"/cars/{sold}-gone", 404), ("/nope", 404), ("/cars?page=abc", 400), ("/cars?page=999", 404)):
            with pytest.raises(urllib.error.HTTPError) as err:
                get(path)
            assert err.value.code == code
    finally:
        server.shutdown()
        server.server_close()


def test_marketplace_process_starts_and_stops():
    with running_marketplace(seed=1, day=0, listings=200) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/robots.txt", timeout=10) as resp:
            assert resp.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/robots.txt", timeout=2)
