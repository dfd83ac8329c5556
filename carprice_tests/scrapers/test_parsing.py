"""Parsing tier, web-poet style: saved HTML pages in, pure functions, expected items out.

The ``automarkt_*`` fixtures were saved as-is from the simulated marketplace
(seed 7, ``MarketConfig.for_active_listings(3000)``, day 0: listings 14469 and
8036, results page 2).  The ``othersite_*`` and other fixtures are hand-written
pages of sites that are not ours, to keep the parser generic.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import detail_page, index_page, page_count
from carprice_tests.conftest import PAGES
from scrapers.items import CarListing, Reject
from scrapers.parsing import (
    MAX_PROPERTIES,
    MAX_PROPERTY_KEY_CHARS,
    MAX_PROPERTY_VALUE_CHARS,
    additional_properties,
    extract_entities,
    field_types,
    listing_links,
    next_page_link,
    parse_listing_page,
)
from scrapers.pipelines import listing_problem, normalize_listing

AUTOMARKT = "http://127.0.0.1:8000"
SOURCE = "fixture"
SCRAPED_AT = "2026-01-15T08:00:00+00:00"


def page(name: str) -> bytes:
    """A saved page as the spider gets it (``response.body`` is bytes)."""
    return (PAGES / name).read_bytes()


def parse(name: str, url: str) -> CarListing | Reject:
    """The parsed page; a listing's source_fields profile is compared in its own tests."""
    item = parse_listing_page(page(name), url, SOURCE, SCRAPED_AT)
    return replace(item, source_fields=None) if isinstance(item, CarListing) else item


def parsed_listing(name: str, url: str) -> CarListing:
    item = parse(name, url)
    assert isinstance(item, CarListing), item
    return item


# --- detail pages of our own marketplace ---------------------------------------------------

JSONLD_URL = f"{AUTOMARKT}/cars/14469-volkswagen-id3-2023"
MICRODATA_URL = f"{AUTOMARKT}/cars/8036-citroen-c3-aircross-2017"


def test_automarkt_jsonld_detail_page_reads_every_raw_field():
    assert parse("automarkt_detail_jsonld.html", JSONLD_URL) == CarListing(
        url=JSONLD_URL, source=SOURCE, scraped_at=SCRAPED_AT, page_format="json-ld",
        title="VOLKSWAGEN ID.3",
        description="ID.3 from 2023 in white. Private sale, no warranty.",
        make_raw="VOLKSWAGEN", model="ID.3",
        model_year_raw="2023", first_registration_raw="12/2023",
        mileage_raw="14,155 miles", mileage_unit_raw="SMI",
        fuel_raw="Electric", transmission_raw="Automatic", body_raw="hatchback",
        power_raw="190", power_unit_raw="KWT",
        color="white", doors_raw="5", condition_raw="good",
        price_raw="23,750.00", currency_raw="GBP",
        seller_type_raw="Person", seller_name="Private seller", region="Greater London",
        listed_at_raw="2025-12-26", site_listing_id="14469", properties='{"condition": "good"}',
    )


def test_automarkt_microdata_detail_page_reads_every_raw_field():
    assert parse("automarkt_detail_microdata.html", MICRODATA_URL) == CarListing(
        url=MICRODATA_URL, source=SOURCE, scraped_at=SCRAPED_AT, page_format="microdata",
        title="CITROEN C3 Aircross",
        description="C3 Aircross from 2017 in grey. Dealer warranty available.",
        make_raw="CITROEN", model="C3 Aircross",
        model_year_raw="2017", first_registration_raw="2017-11-20",
        mileage_raw="65,600 km", mileage_unit_raw="KMT",
        fuel_raw="Diesel", transmission_raw="Manual", body_raw="suv",
        power_raw="118", power_unit_raw="BHP",
        color="grey", doors_raw="5", condition_raw="good",
        price_raw="EUR 7,290", currency_raw="EUR",
        seller_type_raw="AutoDealer", seller_name="Autohaus 321", region="Masovia",
        listed_at_raw="2025-10-23", site_listing_id="8036", properties='{"condition": "good"}',
    )


def _with_canonical(name: str, href: str) -> bytes:
    return page(name).replace(b"</head>", f'<link rel="canonical" href="{href}"></head>'.encode(), 1)


@pytest.mark.parametrize(("fetched", "href", "expected"), [
    # The same page on the site's public port, or without the tracking parameters it was reached with: taken.
    (JSONLD_URL, "http://127.0.0.1:8765/cars/14469-volkswagen-id3-2023",
     "http://127.0.0.1:8765/cars/14469-volkswagen-id3-2023"),
    (JSONLD_URL + "?utm_source=feed", "/cars/14469-volkswagen-id3-2023", JSONLD_URL),
    # Another host (a syndicated copy naming its original), another page (a template naming the home page on every
    # car: listings would collapse into one), another scheme, or nothing: the fetched URL stays.
    (JSONLD_URL, "https://elsewhere.example/cars/1", JSONLD_URL),
    (JSONLD_URL, "/", JSONLD_URL),
    (JSONLD_URL, "/cars/14470-another-car", JSONLD_URL),
    (JSONLD_URL, "javascript:alert(1)", JSONLD_URL),
    (JSONLD_URL, "", JSONLD_URL),
])
def test_a_listing_keeps_the_canonical_url_of_its_own_page(fetched, href, expected):
    item = parse_listing_page(_with_canonical("automarkt_detail_jsonld.html", href), fetched, SOURCE, SCRAPED_AT)
    assert isinstance(item, CarListing) and item.url == expected


def test_the_marketplace_names_its_public_address_as_canonical():
    market = Market(MarketConfig.for_active_listings(200, seed=7))
    listing = market.listing(market.active_ids(3)[0])
    html = detail_page(market, listing, 3, "http://127.0.0.1:8765")
    item = parse_listing_page(html, f"http://127.0.0.1:40625{listing.path}", SOURCE, SCRAPED_AT)
    assert isinstance(item, CarListing) and item.url == f"http://127.0.0.1:8765{listing.path}"


def test_text_and_bytes_html_parse_the_same():
    html = page("automarkt_detail_microdata.html")
    as_text = parse_listing_page(html.decode("utf-8"), MICRODATA_URL, SOURCE, SCRAPED_AT)
    assert as_text == parse_listing_page(html, MICRODATA_URL, SOURCE, SCRAPED_AT)


def test_automarkt_jsonld_listing_normalizes_miles_pounds_and_make():
    item = normalize_listing(parsed_listing("automarkt_detail_jsonld.html", JSONLD_URL))
    assert item.make == "Volkswagen"
    assert item.mileage_km == 22780.3  # 14,155 miles
    assert item.price == 23750.0 and item.currency == "GBP"
    assert item.seller_type == "private"
    assert (item.model_year, item.first_registration) == (2023, "2023-12-01")
    assert (item.fuel, item.transmission, item.power_kw, item.doors) == ("electric", "automatic", 190.0, 5)
    assert item.listed_at == "2025-12-26"
    assert listing_problem(item) is None


def test_automarkt_microdata_listing_normalizes_text_price_bhp_and_make():
    item = normalize_listing(parsed_listing("automarkt_detail_microdata.html", MICRODATA_URL))
    assert item.make == "Citroën"
    assert item.mileage_km == 65600.0
    assert (item.price, item.currency) == (7290.0, "EUR")
    assert item.seller_type == "dealer"
    assert item.power_kw == 88.0  # 118 BHP
    assert (item.model_year, item.first_registration) == (2017, "2017-11-20")
    assert (item.fuel, item.transmission, item.body) == ("diesel", "manual", "suv")
    assert listing_problem(item) is None


# --- detail pages of other sites ------------------------------------------------------------

PRODUCT_URL = "https://www.garage-dupont.example/occasions/peugeot-308-sw-4411"
VEHICLE_URL = "https://motors.example.co.uk/used/skoda-octavia-88231"


def test_product_with_offer_in_a_graph_is_read_as_a_listing():
    item = parsed_listing("othersite_product_offer.html", PRODUCT_URL)
    assert item.page_format == "json-ld"
    assert item.title == "Peugeot 308 SW 1.5 BlueHDi Allure"
    assert item.description == "Break diesel, première main, carnet d'entretien complet."
    assert (item.make_raw, item.model) == ("Peugeot", "308 SW")  # brand as a plain string
    assert item.price_raw == "14990.00"  # from offers.priceSpecification
    assert (item.seller_type_raw, item.seller_name) == ("AutoDealer", "Garage Dupont")
    assert (item.site_listing_id, item.color) == ("GD-4411", "Gris Artense")
    assert item.condition_raw == "https://schema.org/UsedCondition"
    assert item.mileage_raw is None and item.listed_at_raw is None
    normalized = normalize_listing(item)
    assert (normalized.make, normalized.seller_type, normalized.condition) == ("Peugeot", "dealer", None)
    assert normalized.listed_at == SCRAPED_AT[:10]  # no validFrom: the day it was scraped


def test_price_currency_inside_price_specification_is_read():
    """A PriceSpecification carries its own priceCurrency; sites using it often state the currency only there."""
    item = parsed_listing("othersite_product_offer.html", PRODUCT_URL)
    assert item.currency_raw == "EUR"
    normalized = normalize_listing(item)
    assert (normalized.price, normalized.currency) == (14990.0, "EUR")
    assert listing_problem(normalized) is None


def test_vehicle_with_list_type_and_manufacturer_is_read_as_a_listing():
    assert parse("othersite_vehicle_list_types.html", VEHICLE_URL) == CarListing(
        url=VEHICLE_URL, source=SOURCE, scraped_at=SCRAPED_AT, page_format="json-ld",
        title="2016 Skoda Octavia Estate 2.0 TDI SE L", description=None,
        make_raw="Škoda", model="Octavia Estate",  # from "manufacturer", not "brand"
        model_year_raw="2016-03", first_registration_raw="03/2016",  # productionDate fallback
        mileage_raw="61000", mileage_unit_raw="miles",  # unitText, numeric string
        fuel_raw="Diesel", transmission_raw="DSG", body_raw="Estate",
        power_raw="150", power_unit_raw="PS",
        color=None, doors_raw="5", condition_raw=None,
        price_raw="8995", currency_raw="GBP",
        seller_type_raw="Person", seller_name="J. Smith", region="Leeds, West Yorkshire",
        listed_at_raw="2026-01-14T09:30:00+00:00", site_listing_id="MX-88231",
    )


def test_vehicle_with_list_type_normalizes():
    item = normalize_listing(parsed_listing("othersite_vehicle_list_types.html", VEHICLE_URL))
    assert item.make == "Skoda"
    assert item.mileage_km == 98170.0  # 61,000 miles
    assert item.power_kw == 110.3  # 150 PS
    assert (item.price, item.currency) == (8995.0, "GBP")
    assert (item.seller_type, item.transmission, item.body) == ("private", "automatic", "estate")
    assert (item.model_year, item.first_registration, item.listed_at) == (2016, "2016-03-01", "2026-01-14")
    assert listing_problem(item) is None


# --- pages without a listing ----------------------------------------------------------------

def test_broken_jsonld_is_rejected_as_invalid_structured_data():
    url = "https://broken.example/cars/ford-focus"
    reject = parse("broken_jsonld.html", url)
    assert isinstance(reject, Reject)
    assert (reject.url, reject.source, reject.scraped_at) == (url, SOURCE, SCRAPED_AT)
    assert reject.reason == "invalid structured data"
    assert reject.detail.startswith("invalid JSON-LD:")
    with pytest.raises(ValueError, match="invalid JSON-LD"):
        extract_entities(page("broken_jsonld.html"), url)


def test_page_without_structured_data_is_rejected():
    reject = parse("no_structured_data.html", "https://plain.example/ads/7781")
    assert isinstance(reject, Reject)
    assert reject.reason == "no schema.org vehicle on page"
    assert reject.detail == "types found: []"


def test_results_page_is_not_mistaken_for_a_listing():
    reject = parse("automarkt_index.html", f"{AUTOMARKT}/cars?page=2")
    assert isinstance(reject, Reject)
    assert reject.reason == "no schema.org vehicle on page"
    assert reject.detail == "types found: ['ItemList']"


# --- results pages: links and pagination ------------------------------------------------------

INDEX_URL = f"{AUTOMARKT}/cars?page=2"
OTHER_RESULTS_URL = "https://www.autos.example.de/gebrauchtwagen?seite=2"


def test_listing_links_come_from_the_itemlist_as_absolute_urls():
    links = listing_links(page("automarkt_index.html"), INDEX_URL, "a.listing-link")
    assert len(links) == 50 == len(set(links))
    assert links[0] == f"{AUTOMARKT}/cars/15049-opel-adam-2019"
    assert links[-1] == f"{AUTOMARKT}/cars/15000-skoda-rapid-2019"
    assert all(link.startswith(f"{AUTOMARKT}/cars/") for link in links)
    # The ItemList is enough: no selector needed.
    assert listing_links(page("automarkt_index.html"), INDEX_URL) == links


def test_listing_links_fall_back_to_the_css_selector():
    links = listing_links(page("results_page_no_itemlist.html"), OTHER_RESULTS_URL, "a.listing-link")
    assert links == [
        "https://www.autos.example.de/gebrauchtwagen/bmw-320d-touring-12345",  # twice on the page, once here
        "https://www.autos.example.de/gebrauchtwagen/vw-golf-vii-12346",
        "https://www.autos.example.de/gebrauchtwagen/audi-a4-avant-12347",
    ]  # not the promo (class listing-link-promo), the "Merken" link or the breadcrumbs


def test_listing_links_without_itemlist_or_selector_are_empty():
    assert listing_links(page("results_page_no_itemlist.html"), OTHER_RESULTS_URL) == []


def test_listing_links_survive_broken_jsonld():
    assert listing_links(page("broken_jsonld.html"), "https://broken.example/cars", "a.listing-link") == []


def test_next_page_link_follows_rel_next_not_rel_prev():
    assert next_page_link(page("automarkt_index.html"), INDEX_URL) == f"{AUTOMARKT}/cars?page=3"


def test_next_page_link_from_an_anchor_on_another_site():
    assert (next_page_link(page("results_page_no_itemlist.html"), OTHER_RESULTS_URL)
            == "https://www.autos.example.de/gebrauchtwagen?seite=3")


def test_next_page_link_is_none_on_the_last_page():
    # Rendered by the same marketplace as the saved page 2: the last page links back, never forward.
    market = Market(MarketConfig.for_active_listings(3000))
    last = page_count(market, 0)
    html = index_page(market, 0, last)
    assert 'rel="prev"' in html
    assert next_page_link(html, f"{AUTOMARKT}/cars?page={last}") is None
    assert next_page_link(page("automarkt_detail_jsonld.html"), JSONLD_URL) is None


def test_list_item_wrapping_an_entity_links_to_the_entity_url():
    html = """<html><head><script type="application/ld+json">{"@context": "https://schema.org",
      "@type": "ItemList", "itemListElement": [{"@type": "ListItem", "position": 1,
      "item": {"@type": "Car", "@id": "https://s.example/c/1", "name": "Opel Corsa"}},
      {"@type": "ListItem", "position": 2, "item": "https://s.example/c/2"}]}</script></head></html>"""
    assert listing_links(html, "https://s.example/list") == ["https://s.example/c/1", "https://s.example/c/2"]


def test_page_format_names_the_syntax_that_held_the_car():
    html = """<html><head><script type="application/ld+json">{"@context": "https://schema.org",
      "@type": "WebSite", "name": "Cars"}</script></head><body>
      <div itemscope itemtype="https://schema.org/Car"><span itemprop="name">Kia Ceed</span>
      <span itemprop="brand">Kia</span><span itemprop="model">Ceed</span>
      <div itemprop="offers" itemscope itemtype="https://schema.org/Offer"><span itemprop="price">9000</span>
      <meta itemprop="priceCurrency" content="EUR"></div></div></body></html>"""
    item = parse_listing_page(html, "https://s.example/c/3", SOURCE, SCRAPED_AT)
    assert isinstance(item, CarListing)
    assert (item.page_format, item.make_raw, item.price_raw) == ("microdata", "Kia", "9000")


def test_source_fields_profile_the_pages_schema():
    item = parse_listing_page(page("automarkt_detail_jsonld.html"), JSONLD_URL, SOURCE, SCRAPED_AT)
    fields = json.loads(item.source_fields)
    assert fields["brand.name"] == "string"
    assert fields["mileageFromOdometer.value"] == "string" and fields["mileageFromOdometer.unitCode"] == "string"
    assert fields["offers.seller.name"] == "string"
    assert not any(key.startswith("@") or ".@" in key for key in fields)


def test_field_types_names_json_types_and_stops_at_depth():
    entity = {"@type": "Car", "a": 1, "b": "x", "c": [1, 2], "d": {"e": {"f": {"g": 1}}}, "h": None, "i": True}
    assert field_types(entity) == {"a": "number", "b": "string", "c": "array", "d.e.f": "object",
                                   "h": "null", "i": "boolean"}


# --- additionalProperty ---------------------------------------------------------------------

ADDITIONAL_URL = "https://classifieds.example/tulsa/cto/2014-ford-f150/7712.html"


def test_additional_property_pairs_become_a_key_value_map():
    item = parse_listing_page(page("listing_additional_property.html"), ADDITIONAL_URL, SOURCE, SCRAPED_AT)
    assert isinstance(item, CarListing), item
    # Keys folded to snake case, propertyID read when there is no name, values as text, pairs without a value
    # and entries that are not PropertyValues left out.
    assert json.loads(item.properties) == {
        "condition": "Excellent", "title_status": "Rebuilt", "cylinders": "8 cylinders", "drive": "4WD",
        "size": "full-size", "vehicle_type": "pickup", "doors": "4"}
    # The page states its condition only as a property.
    assert item.condition_raw == "Excellent"
    assert normalize_listing(item).condition == "excellent"


def test_additional_property_as_one_dict_and_capped_against_hostile_pages():
    single = {"@type": "Car", "additionalProperty": {"@type": "PropertyValue", "name": "Drive", "value": "AWD"}}
    assert additional_properties(single) == {"drive": "AWD"}
    many = [{"name": f"Key {i}", "value": "x" * 10_000} for i in range(500)]
    many.insert(0, {"name": "K" * 500, "value": "long key"})
    props = additional_properties({"additionalProperty": many})
    assert len(props) == MAX_PROPERTIES
    assert max(len(k) for k in props) == MAX_PROPERTY_KEY_CHARS
    assert max(len(v) for v in props.values()) == MAX_PROPERTY_VALUE_CHARS


def test_a_page_without_additional_property_has_no_map():
    item = parsed_listing("othersite_product_offer.html", "https://othersite.example/offer/1")
    assert item.properties is None
