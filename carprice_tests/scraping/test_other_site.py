"""The whole path on a second site unlike the simulator: US listings in dollars and miles, offset pagination,
``additionalProperty`` pairs, placeholder prices, reposts and no listing dates; crawled two days running by an
installation whose market is in US dollars."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from urllib.parse import urlsplit

import pytest

from carprice.config import SourceConfig
from carprice.runs.clock import process_batch
from carprice.scraping.crawl import crawl_source
from carprice.validation.admission import readmit
from carprice.warehouse import Warehouse
from carprice_tests.othersite import generate_posts, posts_on, running_othersite

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = pytest.mark.integration

SEED, LISTINGS = 7, 600
LOOPBACK = {"CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_START_DELAY": 0}


def crawl_day(landing_dir, day: int):
    """A real crawl of the other site as it is on ``day``."""
    with running_othersite(SEED, day, LISTINGS) as base:
        source = SourceConfig(name="usedcars_us", start_urls=(f"{base}/search?offset=0",), link_css="a.result-title",
                              next_css="a.more", scrapy_settings=LOOPBACK)
        return crawl_source(source, landing_dir, timeout_s=300).batch


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_outcomes(wh: Warehouse, batch_id: str) -> str:
    checks = wh.query("SELECT check_name, passed, failures FROM batch_checks WHERE batch_id = ?", [batch_id])
    return "\n".join(f"  {r.check_name}: {'ok' if r.passed else 'FAILED ' + str(r.failures)}"
                     for r in checks.itertuples())


def judgement_figures(scores: dict) -> str:
    """The challenger and each baseline on the held-out listings: MAE, median APE and R²."""
    rows = {"challenger": scores["challenger"]} | scores["baselines"]
    return "\n".join(f"  {name:24} MAE {s['overall']['mae']:8,.0f} USD  median APE "
                     f"{s['overall']['median_ape']:6.1%}  R² {s['overall']['r2']:.3f}" for name, s in rows.items())


def test_a_us_site_is_crawled_onboarded_trained_on_and_accepted_the_next_day(settings, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    settings = dataclasses.replace(settings, market_currency="USD")  # a US installation: prices stay in dollars
    posts = generate_posts(SEED, LISTINGS)
    on_sale = {f"/listing/{p.id}.html": p for p in posts_on(posts, 1)}

    first = crawl_day(settings.landing_dir, 1)
    listings, rejects = lines(first.listings_file), lines(first.rejects_file)
    reasons = Counter(r["reason"] for r in rejects)
    print(f"\nday 1: {len(on_sale)} on sale, {first.manifest['counts']} landed, rejects {dict(reasons)}")
    assert first.manifest["finish_reason"] == "finished"
    assert len(listings) + len(rejects) == len(on_sale), "every detail page is either a listing or a reject"
    assert len(listings) >= 0.95 * len(on_sale)
    # "Call for price" is rejected by the spider; "$0" and "$1" land and are left to cleaning.
    assert set(reasons) == {"unreadable price"}
    assert reasons["unreadable price"] == sum(p.placeholder == "Call for price" for p in on_sale.values())
    for item in listings:
        post = on_sale[urlsplit(item["url"]).path]
        assert item["currency"] == "USD" and item["mileage_unit_raw"] == "SMI" and item["listed_at_raw"] is None
        # The page's amount and currency land as stated; the platform prices them in the market currency.
        assert item["price"] == float(post.price_text(1).lstrip("$")) and "market_price" not in item
        assert item["mileage_km"] == pytest.approx(1.609344 * post.car.miles, abs=0.1)
        assert json.loads(item["properties"])["title_status"] == post.car.title_status

    # A new source: its first batch waits for a person.
    held = process_batch(settings, first.batch_id)
    assert held.status == "quarantined" and list(held.failed_checks) == ["source_reference_reviewed"], held.render()
    wh = Warehouse(settings.warehouse_path)
    readmit(wh, first.batch_id, "test", "reviewed")
    onboarded = process_batch(settings, first.batch_id)
    print(onboarded.render())
    assert onboarded.status == "readmitted", onboarded.render()
    model = wh.query("SELECT version, split, n_train, n_holdout FROM model_registry").iloc[0]
    assert json.loads(model["split"])["kind"] != "listing_date"
    judged = wh.query("SELECT challenger, n_eval, scores, promoted, reason FROM model_evaluations")
    assert judged["challenger"].tolist() == [model["version"]]
    print(f"model {model['version']}: split {json.loads(model['split'])['kind']}, n_train {model['n_train']}, "
          f"n_holdout {model['n_holdout']}, promoted {judged['promoted'].iloc[0]}: {judged['reason'].iloc[0]}")
    print(judgement_figures(json.loads(judged["scores"].iloc[0])))

    second = crawl_day(settings.landing_dir, 2)
    print(f"day 2: {len(posts_on(posts, 2))} on sale, {second.manifest['counts']} landed, "
          f"rejects {second.manifest.get('reject_reasons')}")
    next_day = process_batch(settings, second.batch_id)
    print(next_day.render())
    print(f"day 2 checks:\n{check_outcomes(wh, second.batch_id)}")
    # The key figure: the next day's batch of the reviewed source is accepted without a person.
    assert next_day.status == "accepted", next_day.render() + check_outcomes(wh, second.batch_id)

    clean = wh.query("SELECT url, market_price, mileage_km, is_current, repost_of FROM clean_listings")
    current = clean[clean["is_current"]]
    day2 = {f"/listing/{p.id}.html": p for p in posts_on(posts, 2)}
    for row in current.itertuples():
        post = day2[urlsplit(row.url).path]
        assert post.placeholder is None, "placeholder prices never reach clean listings"
        assert row.market_price == float(post.price_text(2).lstrip("$")), "a USD market's prices are its dollars"
        assert row.mileage_km == pytest.approx(1.609344 * post.car.miles, abs=0.1)
    assert (~clean["is_current"]).sum() > 0, "listings sold since day 1 are kept, no longer current"
    excluded = wh.query("SELECT url, reason FROM excluded_listings")
    placeholders = {f"/listing/{p.id}.html" for p in posts if p.placeholder in ("$0", "$1")}
    landed = {urlsplit(u).path for u in excluded["url"]}
    print(f"excluded by cleaning: {excluded['reason'].str.split(':').str[0].value_counts().to_dict()}")
    assert placeholders & set(day2) <= landed, "$0 and $1 placeholders are excluded by cleaning"
    reposts = current["repost_of"].notna().sum()
    print(f"clean: {len(clean)} listings, {len(current)} current, {reposts} current reposts flagged")
    assert reposts > 0
    if judged["promoted"].iloc[0]:
        valued = set(wh.query("SELECT url FROM listing_valuations")["url"])
        assert set(current["url"]) <= valued, "every current listing is valued, reposts included"
