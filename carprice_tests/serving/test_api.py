"""The price API with FastAPI's test client, against a real trained champion and a real published snapshot."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from carprice.config import ServingConfig
from carprice.serving.app import create_app
from carprice.serving.holder import ModelHolder
from carprice.serving.rating import RATINGS
from carprice.serving.store import open_snapshot
from carprice.training.modeling import load_model
from carprice.training.registry import champion, rollback
from carprice.warehouse import Warehouse
from carprice_tests.serving.conftest import Installation, build_installation, train_and_promote

# A trained champion and a published snapshot behind the API: the integration tier.
pytestmark = pytest.mark.integration

V1 = "/api/v1"


def common_car(inst: Installation, asking: float | None = None) -> dict:
    """A car of the make and model the installation has most listings of, as an owner describes it."""
    clean = inst.warehouse.query("SELECT * FROM clean_listings")
    make, model = clean.groupby(["make", "model"]).size().idxmax()
    row = clean[(clean["make"] == make) & (clean["model"] == model)].iloc[0]
    return {"make": make, "model": model, "model_year": int(row["model_year"]), "mileage_km": row["mileage_km"],
            "fuel": row["fuel"], "transmission": row["transmission"], "power_kw": row["power_kw"],
            "region": row["region"], "title": row["title"],
            "asking_price": float(row["market_price"]) if asking is None else asking}


@pytest.fixture(scope="module")
def client(installation):
    with TestClient(create_app(installation.settings, poll=False)) as c:
        yield c


def test_a_car_is_valued_with_interval_rating_effects_and_comparables(client, installation):
    version = champion(Warehouse(installation.settings.snapshot_path, read_only=True)).version
    answer = client.post(f"{V1}/valuations", json=common_car(installation))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert answer.headers["X-Model-Version"] == body["model_version"] == version
    assert "asking prices, not sale prices" in body["price_meaning"]
    assert body["data_as_of"].startswith("2026-")
    valuation = body["valuation"]
    low, high = valuation["interval_90"]
    assert low < valuation["predicted_price"] < high
    assert valuation["rating"] in RATINGS and valuation["no_rating_reason"] is None
    # The effects add up to the prediction in log space (prices are rounded to euros).
    total = np.log(valuation["baseline_price"]) + sum(e["log_effect"] for e in valuation["effects"]) \
        + valuation["other_log_effect"]
    assert total == pytest.approx(np.log(valuation["predicted_price"]), abs=1e-3)
    assert 5 <= len(valuation["comparables"]) <= 10
    assert all(c["url"].startswith("http") and c["rating"] in RATINGS for c in valuation["comparables"])
    assert valuation["comparables"][0]["same_model"]


def test_a_car_priced_without_effects_gets_the_same_price(client, installation):
    car = common_car(installation)
    full = client.post(f"{V1}/valuations", json=car).json()["valuation"]
    answer = client.post(f"{V1}/valuations", params={"effects": "false"}, json=car)
    assert answer.status_code == 200, answer.text
    lean = answer.json()["valuation"]
    assert lean.get("effects") is None and lean.get("baseline_price") is None
    for key in ("predicted_price", "interval_90", "rating", "no_rating_reason", "comparables"):
        assert lean[key] == full[key], key


def test_the_asking_price_moves_the_rating(client, installation):
    car = common_car(installation)
    predicted = client.post(f"{V1}/valuations", json=car).json()["valuation"]["predicted_price"]
    ratings = [client.post(f"{V1}/valuations", json={**car, "asking_price": predicted * f}).json()["valuation"]
               ["rating"] for f in (0.5, 1.0, 2.0)]
    assert ratings == ["great", "fair", "overpriced"]


def test_no_rating_without_asking_price_or_outside_what_the_model_knows(client, installation):
    car = common_car(installation)
    no_price = client.post(f"{V1}/valuations", json={**car, "asking_price": None}).json()["valuation"]
    assert no_price["rating"] is None and no_price["no_rating_reason"] == "no asking price given"
    assert no_price["predicted_price"] > 0
    far = client.post(f"{V1}/valuations", json={**car, "mileage_km": 990_000}).json()["valuation"]
    assert far["rating"] is None and "mileage_km 990,000 is outside" in far["no_rating_reason"]
    rare = installation.warehouse.query("SELECT make, model, any_value(model_year) AS y FROM clean_listings "
                                        "GROUP BY ALL HAVING count(*) < 3 LIMIT 1").iloc[0]
    few = client.post(f"{V1}/valuations", json={**car, "make": rare["make"], "model": rare["model"],
                                                 "model_year": int(rare["y"])}).json()["valuation"]
    assert few["rating"] is None and few["predicted_price"] > 0
    assert "listings of a" in few["no_rating_reason"] or "never learned" in few["no_rating_reason"]


def test_a_batch_is_valued_in_one_pass_like_single_cars(client, installation):
    car = common_car(installation)
    cars = [car, {**car, "mileage_km": car["mileage_km"] + 50_000}, {**car, "asking_price": None}]
    answer = client.post(f"{V1}/valuations:batch", json={"cars": cars})
    assert answer.status_code == 200, answer.text
    batch = answer.json()["valuations"]
    assert answer.headers["X-Model-Version"] == answer.json()["model_version"]
    singles = [client.post(f"{V1}/valuations", json=c).json()["valuation"] for c in cars]
    assert [b["predicted_price"] for b in batch] == [s["predicted_price"] for s in singles]
    assert [b["rating"] for b in batch] == [s["rating"] for s in singles]
    assert batch[0].get("effects") is None and batch[1]["predicted_price"] < batch[0]["predicted_price"]
    full = client.post(f"{V1}/valuations:batch", json={"cars": cars[:1], "effects": True, "comparables": True})
    assert full.json()["valuations"][0]["effects"] and full.json()["valuations"][0]["comparables"]


def test_deals_are_filtered_and_paged_with_parameters_only(client, installation):
    everything = client.get(f"{V1}/deals", params={"min_rating": "overpriced", "limit": 200}).json()
    assert everything["total"] == installation.warehouse.count("listing_valuations")
    great = client.get(f"{V1}/deals").json()
    assert great["total"] == installation.warehouse.count("deals")  # "great" is what the pipeline lists as deals
    assert {d["rating"] for d in great["deals"]} == {"great"}
    good = client.get(f"{V1}/deals", params={"min_rating": "good", "limit": 200}).json()
    assert good["total"] > great["total"] and {d["rating"] for d in good["deals"]} == {"great", "good"}
    savings = [d["saving"] for d in good["deals"]]
    assert savings == sorted(savings, reverse=True)
    first, second = (client.get(f"{V1}/deals", params={"min_rating": "good", "limit": 5, "offset": o}).json()
                     for o in (0, 5))
    assert {d["url"] for d in first["deals"]}.isdisjoint(d["url"] for d in second["deals"])
    car = common_car(installation)
    cheap = client.get(f"{V1}/deals", params={"make": car["make"].upper(), "max_price": 20_000,
                                              "min_rating": "fair", "limit": 200}).json()
    assert all(d["make"] == car["make"] and d["asking_price"] <= 20_000 for d in cheap["deals"])
    hostile = client.get(f"{V1}/deals", params={"make": "x' OR 1=1; DROP TABLE clean_listings; --"})
    assert hostile.status_code == 200 and hostile.json()["total"] == 0
    assert Warehouse(installation.settings.snapshot_path, read_only=True).count("clean_listings") > 0


@pytest.mark.parametrize(("change", "field", "allowed"), [
    ({"model_year": 2999}, "model_year", {"ge": 1950}),
    ({"model_year": 1900}, "model_year", {"ge": 1950}),
    ({"mileage_km": -5}, "mileage_km", {"ge": 0.0, "le": 1_000_000.0}),
    ({"power_kw": 5_000}, "power_kw", {"gt": 0.0, "le": 1_200.0}),
    ({"asking_price": 0}, "asking_price", {"gt": 0.0}),  # any currency's prices: only a positive amount
    ({"doors": 40}, "doors", {"ge": 1, "le": 7}),
])
def test_impossible_values_are_refused_naming_the_field_and_range(client, installation, change, field, allowed):
    answer = client.post(f"{V1}/valuations", json={**common_car(installation), **change})
    assert answer.status_code == 422
    error = answer.json()["detail"][0]
    assert error["field"] == field and allowed.items() <= error["allowed"].items()


def test_unknown_make_or_model_is_refused_naming_the_nearest_known_ones(client, installation):
    car = common_car(installation)
    typo = car["make"][:-1] + "x"
    answer = client.post(f"{V1}/valuations", json={**car, "make": typo})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "make" and car["make"] in answer.json()["detail"][0]["nearest"]
    model = client.post(f"{V1}/valuations", json={**car, "model": car["model"] + "zz"}).json()["detail"][0]
    assert model["field"] == "model" and car["model"] in model["nearest"]
    in_batch = client.post(f"{V1}/valuations:batch", json={"cars": [car, {**car, "make": typo}]})
    assert in_batch.status_code == 422 and in_batch.json()["detail"][0]["field"] == "cars[1].make"


def test_other_bad_requests_are_422s(client, installation):
    car = common_car(installation)
    not_a_number = json.dumps({**car, "mileage_km": float("nan")})  # Python's json writes NaN; JSON has none
    answer = client.post(f"{V1}/valuations", content=not_a_number, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "mileage_km"
    assert client.post(f"{V1}/valuations", json={**car, "colour": "red"}).status_code == 422  # unknown field
    assert client.post(f"{V1}/valuations", json={"make": "BMW"}).status_code == 422
    assert client.post(f"{V1}/valuations", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    assert client.post(f"{V1}/valuations:batch", json={"cars": []}).status_code == 422
    assert client.get(f"{V1}/deals", params={"min_rating": "superb"}).status_code == 422
    assert client.get(f"{V1}/deals", params={"limit": 10_000}).status_code == 422


def test_a_batch_over_the_limit_is_refused(installation):
    config = ServingConfig(max_batch=3, max_body_bytes=4_000)
    with TestClient(create_app(installation.settings, config, poll=False)) as client:
        car = common_car(installation)
        over = client.post(f"{V1}/valuations:batch", json={"cars": [car] * 4})
        assert over.status_code == 422 and over.json()["detail"][0]["allowed"] == {"max_length": 3}
        huge = client.post(f"{V1}/valuations:batch", json={"cars": [car] * 40})
        assert huge.status_code == 413 and "over 4,000 bytes" in huge.json()["detail"]
        assert huge.headers["X-Model-Version"] == over.json()["model_version"]

        def chunks():  # no Content-Length: the body is counted as it arrives
            yield b'{"cars": ['
            for _ in range(40):
                yield (str(car).replace("'", '"') + ",").encode()

        assert client.post(f"{V1}/valuations:batch", content=chunks(),
                           headers={"content-type": "application/json"}).status_code == 413


def test_champion_health_and_readiness(client, installation):
    info = client.get(f"{V1}/models/champion").json()
    assert info["model_version"] == champion(installation.warehouse).version
    assert info["metrics"]["holdout"]["mae"] > 0 and info["reload_problem"] is None
    assert client.get(f"{V1}/healthz").json()["status"] == "ok"
    ready = client.get(f"{V1}/readyz")
    assert ready.status_code == 200 and ready.headers["X-Model-Version"] == info["model_version"]
    assert f"{V1}/valuations:batch" in client.get("/openapi.json").json()["paths"]
    # The interactive docs work without internet: every script, style and icon they load comes from the app.
    docs = client.get("/docs")
    assert docs.status_code == 200
    loaded = re.findall(r'(?:src|href)="([^"]+)"', docs.text) + re.findall(r"url: '([^']+)'", docs.text)
    assert loaded and all(url.startswith("/") for url in loaded), loaded
    assert all(client.get(url).status_code == 200 for url in loaded)


def test_before_any_champion_the_api_says_why_with_503(tmp_path):
    inst = build_installation(tmp_path)
    with TestClient(create_app(inst.settings, poll=False)) as client:
        answer = client.post(f"{V1}/valuations", json={"make": "BMW", "model": "X5", "model_year": 2020,
                                                       "mileage_km": 1})
        assert answer.status_code == 503 and "no published snapshot" in answer.json()["detail"]
        assert answer.headers["X-Model-Version"] == "none"
        assert client.get(f"{V1}/healthz").status_code == 200
        assert client.get(f"{V1}/readyz").status_code == 503
        inst.warehouse.publish_snapshot(inst.settings.snapshot_path)
        client.app.state.holder.refresh()
        answer = client.get(f"{V1}/deals")
        assert answer.status_code == 503 and "no champion" in answer.json()["detail"]
        train_and_promote(inst)
        assert client.app.state.holder.refresh()
        assert client.get(f"{V1}/readyz").status_code == 200


def corrupt(folder) -> None:
    """Change one leaf value of a saved model without updating its checksum."""
    path = folder / "model.txt"
    path.write_text(path.read_text().replace("leaf_value=", "leaf_value=1", 1))


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_a_broken_artifact_never_replaces_the_serving_champion(tmp_path, damage, caplog):
    inst = build_installation(tmp_path)
    good = train_and_promote(inst)
    holder = ModelHolder(inst.settings.snapshot_path)
    assert holder.refresh() and holder.served.version == good
    bad = train_and_promote(inst, {"num_leaves": 7}, publish=False)
    folder = champion(inst.warehouse).artifact_path
    corrupt(folder) if damage == "corrupted" else shutil.rmtree(folder)
    inst.warehouse.publish_snapshot(inst.settings.snapshot_path)
    assert not holder.refresh()
    assert holder.served.version == good
    assert bad in holder.problem or "checksum" in holder.problem or "cannot read" in holder.problem
    assert f"still serving {good}" in holder.problem
    assert any("not loaded" in r.message for r in caplog.records)
    # A later snapshot naming a working champion is served again.
    fixed = train_and_promote(inst, {"num_leaves": 5})
    assert holder.refresh() and holder.served.version == fixed and holder.problem is None


def test_the_same_champion_with_new_listings_keeps_its_loaded_model(installation, tmp_path):
    inst = dataclasses.replace(installation)
    holder = ModelHolder(inst.settings.snapshot_path)
    holder.refresh()
    model = holder.served.model
    copy = tmp_path / "snapshot.duckdb"
    shutil.copyfile(inst.settings.snapshot_path, copy)
    holder.snapshot = copy
    assert holder.refresh() and holder.served.model is model


def test_the_effects_take_the_champions_prediction_apart_exactly(installation):
    registered = champion(installation.warehouse)
    model = load_model(registered.artifact_path, expected_sha256=registered.sha256)
    features = installation.features.head(50)
    baseline, effects = model.explain_log(features)
    assert list(effects.columns) == model.features
    np.testing.assert_allclose(baseline + effects.sum(axis=1).to_numpy(), model.predict_log(features), atol=1e-9)
    intercept, terms = model.base.terms(features)
    np.testing.assert_allclose(intercept + terms.sum(axis=1).to_numpy(), model.base.predict_log(features),
                               atol=1e-9)


def test_the_snapshot_is_opened_read_only(installation):
    snapshot = open_snapshot(installation.settings.snapshot_path)
    with pytest.raises(duckdb.Error, match="read-only"):
        snapshot.replace_table("written_by_the_api", pd.DataFrame({"x": [1]}))


def test_a_rollback_is_served_like_a_promotion(tmp_path):
    inst = build_installation(tmp_path)
    first = train_and_promote(inst)
    holder = ModelHolder(inst.settings.snapshot_path)
    holder.refresh()
    second = train_and_promote(inst, {"num_leaves": 7})
    assert holder.refresh() and holder.served.version == second
    rollback(inst.warehouse, first, "the newer model undervalues vans")
    inst.warehouse.publish_snapshot(inst.settings.snapshot_path)  # as valuation_job does after a rollback
    assert holder.refresh() and holder.served.version == first
