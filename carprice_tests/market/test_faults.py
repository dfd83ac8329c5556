"""Fault injection: each fault's effect on the marketplace's pages, and a parser that survives malformed pages.

Pages are rendered in process and read by the spider's pure functions
(``scrapers.parsing``, ``scrapers.pipelines``), as the crawl would read them;
one test serves a faulty site over HTTP.
"""

from __future__ import annotations

import re
import threading
import traceback
import urllib.request
from collections import Counter
from functools import cache, lru_cache
from urllib.parse import parse_qs, urlsplit

import pytest

from carprice.config import market_date
from carprice.market import faults as F
from carprice.market.faults import CORPUS_KINDS, FAULTS, breakage_kind, malformed_pages, parse_faults
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import car_data, detail_page, index_page, listing_urls, price_text
from carprice.market.server import MarketplaceServer, running_marketplace
from carprice.money.rates import Money
from carprice_tests.conftest import PAGES
from scrapers.items import CarListing, Reject
from scrapers.parsing import extract_entities, find_vehicle, listing_links, parse_listing_page
from scrapers.pipelines import listing_problem, normalize_listing

SEED = 4
DAY = 0
DATE = market_date(DAY)
RATES = Money.default()
SAMPLE = 300
SCRAPED_AT = "2026-01-01T00:00:00"
KM_PER_MILE = 1.609344


@cache
def market(faults: frozenset[str] = frozenset()) -> Market:
    return Market(MarketConfig.for_active_listings(600, seed=SEED, faults=faults))


def sample_ids() -> list[int]:
    return [int(i) for i in market().active_ids(DAY)[:SAMPLE]]


@cache
def crawled(faults: frozenset[str] = frozenset()) -> dict[int, tuple[CarListing | Reject, str | None]]:
    """Each sampled listing's detail page as the spider reads it: (item, problem), a Reject's problem its reason."""
    mkt = market(faults)
    out = {}
    for listing_id in sample_ids():
        listing = mkt.listing(listing_id)
        item = parse_listing_page(detail_page(mkt, listing, DAY), f"http://127.0.0.1{listing.path}", "test", SCRAPED_AT)
        if isinstance(item, Reject):
            out[listing_id] = (item, item.reason)
        else:
            item = normalize_listing(item)
            problem = listing_problem(item)
            out[listing_id] = (item, problem.reason if problem else None)
    return out


# What a listing says about the car and its price, leaving out metadata about how the page was read.
CORE_FIELDS = ("make", "model", "model_year", "first_registration", "mileage_km", "fuel", "transmission", "body",
               "power_kw", "doors", "color", "condition", "price", "currency", "seller_type", "region",
               "listed_at", "site_listing_id")


def core(item: CarListing | Reject) -> tuple:
    return tuple(getattr(item, name) for name in CORE_FIELDS) if isinstance(item, CarListing) else (item.reason,)


def listings(faults: frozenset[str]) -> dict[int, CarListing]:
    """The sampled listings read without problem under ``faults``."""
    return {i: item for i, (item, problem) in crawled(faults).items() if isinstance(item, CarListing) and not problem}


def vehicle_entity(mkt: Market, listing_id: int) -> dict:
    listing = mkt.listing(listing_id)
    found = find_vehicle(extract_entities(detail_page(mkt, listing, DAY), f"http://127.0.0.1{listing.path}"))
    assert found is not None
    return found[1]


# --- naming faults ------------------------------------------------------------------------------

def test_parse_faults_reads_comma_separated_names():
    assert parse_faults("rename_field, prices_x100") == {"rename_field", "prices_x100"}
    assert parse_faults("broken_pages,") == {"broken_pages"}
    assert parse_faults("") == parse_faults(None) == frozenset()
    assert parse_faults(",".join(sorted(FAULTS))) == FAULTS
    assert len(FAULTS) == 8


def test_parse_faults_rejects_an_unknown_name_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown fault 'teleport'") as err:
        parse_faults("prices_x100,teleport")
    assert all(name in str(err.value) for name in FAULTS)
    with pytest.raises(ValueError, match=r"unknown faults 'a', 'b'"):
        parse_faults("b,a")


def test_market_config_validates_and_freezes_its_faults():
    with pytest.raises(ValueError, match=r"unknown fault 'teleport'; valid faults: broken_pages"):
        MarketConfig(faults=frozenset({"teleport"}))
    config = MarketConfig.for_active_listings(100, faults={"prices_x100"})
    assert config.faults == frozenset({"prices_x100"}) and isinstance(config.faults, frozenset)
    assert hash(config) == hash(MarketConfig.for_active_listings(100, faults=frozenset({"prices_x100"})))


# --- each fault on the rendered pages ----------------------------------------------------------

def test_without_faults_pages_are_byte_for_byte_unchanged():
    plain, explicit = (Market(MarketConfig.for_active_listings(3000)),
                       Market(MarketConfig.for_active_listings(3000, faults=frozenset())))
    # The saved fixtures were rendered before faults existed.
    assert detail_page(plain, plain.listing(14469), 0) == (PAGES / "automarkt_detail_jsonld.html").read_bytes()
    assert detail_page(plain, plain.listing(8036), 0) == (PAGES / "automarkt_detail_microdata.html").read_bytes()
    assert index_page(plain, 0, 2).encode("utf-8") == (PAGES / "automarkt_index.html").read_bytes()
    for listing_id in plain.active_ids(0)[:200]:
        assert detail_page(plain, plain.listing(int(listing_id)), 0) == detail_page(
            explicit, explicit.listing(int(listing_id)), 0)
    assert index_page(plain, 0, 1) == index_page(explicit, 0, 1)


def test_rename_field_hides_the_mileage_from_the_spider():
    faults = frozenset({F.RENAME_FIELD})
    assert sum(item.mileage_raw is not None for item in listings(frozenset()).values()) > 0.9 * SAMPLE
    renamed = listings(faults)
    assert len(renamed) == len(listings(frozenset()))
    assert all(item.mileage_raw is None and item.mileage_km is None for item in renamed.values())
    entity = vehicle_entity(market(faults), sample_ids()[0])
    assert "mileage" in entity and "mileageFromOdometer" not in entity


def test_remove_field_drops_the_model_year():
    faults = frozenset({F.REMOVE_FIELD})
    assert sum(item.model_year_raw is not None for item in listings(frozenset()).values()) > 0.95 * SAMPLE
    assert all(item.model_year_raw is None for item in listings(faults).values())
    assert len(listings(faults)) == len(listings(frozenset()))


def test_new_field_adds_a_vin_and_co2_the_spider_ignores():
    faults = frozenset({F.NEW_FIELD})
    mkt = market(faults)
    for listing_id in sample_ids()[:40]:
        entity = vehicle_entity(mkt, listing_id)
        assert re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", entity["vehicleIdentificationNumber"]), entity
        assert float(entity["emissionsCO2"]) >= 0
    data = car_data(mkt, mkt.listing(sample_ids()[0]), DAY)
    assert isinstance(data["emissionsCO2"], int)
    assert data == car_data(Market(mkt.config), mkt.listing(sample_ids()[0]), DAY)  # deterministic
    assert {i: core(item) for i, item in listings(faults).items()} == {
        i: core(item) for i, item in listings(frozenset()).items()}


def test_km_labelled_miles_inflates_the_normalized_mileage():
    faulty = listings(frozenset({F.KM_LABELLED_MILES}))
    with_mileage = [(i, item) for i, item in faulty.items() if item.mileage_km is not None]
    assert len(with_mileage) > 0.9 * SAMPLE
    for listing_id, item in with_mileage:
        true_km = market().listing(listing_id).car.mileage_km
        assert item.mileage_unit_raw == "SMI"
        assert item.mileage_km == pytest.approx(true_km * KM_PER_MILE, abs=0.1)


def test_prices_x100_multiplies_every_price_by_100():
    clean, faulty = listings(frozenset()), listings(frozenset({F.PRICES_X100}))
    assert faulty.keys() == clean.keys()
    for listing_id, item in faulty.items():
        assert item.price == pytest.approx(100 * clean[listing_id].price, rel=1e-4)
    listing = market().listing(sample_ids()[0])
    assert listing.price_in_currency(DAY) * 100 == F.stated_price(listing, DAY, frozenset({F.PRICES_X100}))[0]


def test_new_currency_quotes_local_prices_worth_the_same():
    faults = frozenset({F.NEW_CURRENCY})
    clean, faulty = listings(frozenset()), listings(faults)
    currencies = Counter(item.currency for item in faulty.values())
    assert currencies["PLN"] >= 5 and currencies["CHF"] >= 5, currencies
    for listing_id, item in faulty.items():
        listing = market().listing(listing_id)
        expected = {"Masovia": "PLN", "Vienna": "CHF"}.get(listing.region, clean[listing_id].currency)
        assert item.currency == expected
        if not listing.absurd_price:
            assert RATES.convert(item.price, item.currency, DATE) == pytest.approx(
                RATES.convert(clean[listing_id].price, clean[listing_id].currency, DATE), rel=0.05)
    polish = next(lst for lst in market().listings_on(DAY) if lst.region == "Masovia" and lst.price_style == 0)
    assert price_text(polish, DAY, faults).endswith(" zł")
    swiss = next(lst for lst in market().listings_on(DAY) if lst.region == "Vienna" and lst.price_style == 0)
    assert price_text(swiss, DAY, faults).startswith("CHF ")


def test_broken_pages_break_about_30_percent_of_pages_without_crashing_the_parser():
    faults = frozenset({F.BROKEN_PAGES})
    mkt, clean, broken = market(faults), crawled(frozenset()), crawled(faults)
    kinds = {i: breakage_kind(SEED, i) for i in sample_ids()}
    caught = [i for i, (_, problem) in broken.items() if problem and not clean[i][1]]
    altered = [i for i in sample_ids() if core(broken[i][0]) != core(clean[i][0])]
    by_kind = Counter((kinds[i], "caught" if i in caught else "altered" if i in altered else "same")
                      for i in sample_ids())
    report = f"{len(caught)} caught, {len(altered)} altered of {SAMPLE}: {sorted(by_kind.items(), key=str)}"
    assert set(kinds.values()) == set(F.BREAKAGES) | {None}, report
    assert 0.2 * SAMPLE <= sum(k is not None for k in kinds.values()) <= 0.4 * SAMPLE, report
    assert 0.2 * SAMPLE <= len(altered) <= 0.4 * SAMPLE, report
    # The spider rejects truncated pages and invalid JSON-LD; wrong types, huge numbers and mojibake mostly
    # parse into plausible-looking listings, which is what data validation has to catch.
    assert len(caught) >= 0.08 * SAMPLE, report
    assert all(kinds[i] is not None for i in caught), report
    assert all(detail_page(mkt, mkt.listing(i), DAY) == detail_page(market(), market().listing(i), DAY)
               for i in sample_ids() if kinds[i] is None)
    for i in sample_ids():
        if kinds[i] == "non_utf8":
            with pytest.raises(UnicodeDecodeError):
                detail_page(mkt, mkt.listing(i), DAY).decode("utf-8")


def test_duplicate_flood_lists_every_listing_under_three_urls():
    faults = frozenset({F.DUPLICATE_FLOOD})
    mkt = market(faults)
    base = "http://127.0.0.1:8765"
    links = listing_links(index_page(mkt, DAY, 1), f"{base}/cars?page=1")
    clean_links = listing_links(index_page(market(), DAY, 1), f"{base}/cars?page=1")
    assert len(links) == len(set(links)) == 3 * len(clean_links) == 3 * mkt.config.page_size
    ids = Counter(int(re.match(r"/cars/(\d+)", urlsplit(link).path).group(1)) for link in links)
    assert set(ids.values()) == {3}
    assert {f"{base}{path}" for path in (market().listing(i).path for i in ids)} == set(clean_links)

    server = MarketplaceServer(mkt, DAY)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        listing = mkt.listing(next(iter(ids)))
        bodies = set()
        for url in listing_urls(listing, faults):
            with urllib.request.urlopen(server.url + url, timeout=10) as resp:
                assert resp.status == 200
                bodies.add(resp.read())
        assert len(bodies) == 1, "the same car under every URL"
    finally:
        server.shutdown()
        server.server_close()


def test_served_broken_pages_answer_200_with_undecodable_or_unparseable_bodies():
    seed, n = 1, 200
    ids = [int(i) for i in Market(MarketConfig.for_active_listings(n, seed=seed)).active_ids(0)]
    picks = {kind: next(i for i in ids if breakage_kind(seed, i) == kind)
             for kind in ("non_utf8", "truncated_html", "invalid_json_ld", None)}
    with running_marketplace(seed=seed, day=0, listings=n, faults=frozenset({F.BROKEN_PAGES})) as url:
        served = {}
        for kind, listing_id in picks.items():
            with urllib.request.urlopen(f"{url}/cars/{listing_id}", timeout=10) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
                served[kind] = resp.read()
    with pytest.raises(UnicodeDecodeError):
        served["non_utf8"].decode("utf-8")
    for kind in ("truncated_html", "invalid_json_ld"):
        assert isinstance(parse_listing_page(served[kind], url, "test", SCRAPED_AT), Reject), kind
    assert isinstance(parse_listing_page(served[None], url, "test", SCRAPED_AT), CarListing)


# --- a corpus of malformed pages -----------------------------------------------------------------

CORPUS_SIZE = 600


@lru_cache(maxsize=1)
def corpus_outcomes() -> list[tuple[str, str, str]]:
    """(kind, outcome, detail) for each corpus page; the outcome is listing, problem, reject or raised."""
    outcomes = []
    for url, body in malformed_pages(CORPUS_SIZE):
        kind = parse_qs(urlsplit(url).query)["malformed"][0]
        try:
            item = parse_listing_page(body, url, "corpus", SCRAPED_AT)
            if isinstance(item, Reject):
                outcomes.append((kind, "reject", item.reason))
                continue
            problem = listing_problem(normalize_listing(item))
        except Exception:  # noqa: BLE001 (any crash on any input is what this corpus looks for)
            outcomes.append((kind, "raised", traceback.format_exc()))
            continue
        outcomes.append((kind, "problem", problem.reason) if problem is not None else (kind, "listing", ""))
    return outcomes


def test_malformed_pages_are_deterministic_and_cover_every_kind():
    first, again = list(malformed_pages(60, seed=3)), list(malformed_pages(60, seed=3))
    assert first == again
    assert first != list(malformed_pages(60, seed=4))
    kinds = Counter(parse_qs(urlsplit(url).query)["malformed"][0] for url, _ in malformed_pages(CORPUS_SIZE))
    assert set(kinds) == set(CORPUS_KINDS) and min(kinds.values()) >= CORPUS_SIZE // len(CORPUS_KINDS)
    assert all(isinstance(body, bytes) for _, body in first)


def test_every_malformed_page_is_a_listing_a_problem_or_a_reject():
    outcomes = corpus_outcomes()
    counts = Counter(outcome for _, outcome, _ in outcomes)
    report = f"of {len(outcomes)} pages: {dict(counts)}; by kind: {sorted(Counter(o[:2] for o in outcomes).items())}"
    assert len(outcomes) == CORPUS_SIZE >= 500
    assert sum(counts[o] for o in ("listing", "problem", "reject", "raised")) == CORPUS_SIZE, report
    assert all(detail.strip() for _, outcome, detail in outcomes if outcome in ("problem", "reject")), report
    assert counts["reject"] >= CORPUS_SIZE // 4 and counts["problem"] >= CORPUS_SIZE // 10, report


@pytest.mark.parametrize("kind", CORPUS_KINDS)
def test_the_parser_never_raises_on_a_malformed_page(kind):
    raised = [detail for k, outcome, detail in corpus_outcomes() if k == kind and outcome == "raised"]
    assert not raised, (f"scrapers.parsing/pipelines raised on {len(raised)} '{kind}' page(s) of the corpus "
                        f"(should be a Reject); first traceback:\n{raised[0] if raised else ''}")
