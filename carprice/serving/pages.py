"""The web pages over the price API: the owner's form (``/``), the deals (``/deals``) and the market plots
(``/market``), rendered on the server from the same code as the API; every style, script and chart comes from
the app itself, so the pages work without internet."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from carprice.cleaning.rules import MIN_MODEL_YEAR
from carprice.config import ServingConfig, Settings
from carprice.serving import store
from carprice.serving.batching import NoChampion, ValuationBatcher
from carprice.serving.charts import chart, price_range
from carprice.serving.holder import ModelHolder
from carprice.serving.rating import RATINGS
from carprice.serving.schemas import Car
from carprice.serving.valuation import unknown_names

HERE = Path(__file__).parent
# The optional fields offered as lists of what the model knows (field, label).
CHOICES = (("fuel", "Fuel"), ("transmission", "Gearbox"), ("body", "Body"), ("region", "Region"),
           ("seller_type", "Seller"), ("condition", "Condition"))
PAGE_SIZE = 50
# Up to this many lines of one chart (more are hard to tell apart).
CHART_SERIES = 5


def _errors(exc: ValidationError) -> list[dict]:
    """Validation errors as the page lists them: the field and what is allowed."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]


def shown(effect: dict) -> str:
    """An effect's feature value as a person reads it: 13.6 rather than 13.612594113620808, a year without a
    thousands separator, "not given" for missing."""
    value = effect["value"]
    if value is None:
        return "not given"
    if isinstance(value, float) and effect["feature"] != "model_year":
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:,.1f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def add_pages(app: FastAPI, settings: Settings, config: ServingConfig, holder: ModelHolder,
              batcher: ValuationBatcher) -> None:
    """Register the pages and their static files on ``app``."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["shown"] = shown
    # Prices are in the installation's market currency: pages name it, never assume the euro.
    templates.env.globals["currency"] = settings.market_currency
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, name: str, **context) -> HTMLResponse:
        served = holder.served
        headers = {"X-Model-Version": served.version} if served else None
        return templates.TemplateResponse(request, name, {"served": served, "problem": holder.problem, **context},
                                          headers=headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def owner(request: Request) -> HTMLResponse:
        """The owner's form and, once filled in, the valuation of the car."""
        served = holder.served
        form = {k: v.strip() for k, v in request.query_params.items() if k in Car.model_fields and v.strip()}
        context = {"form": form, "errors": [], "valuation": None, "range_svg": "", "makes": [], "choices": [],
                   "min_year": MIN_MODEL_YEAR, "max_year": date.today().year + 1,
                   "optional_given": any(k in form for k, _ in CHOICES) or "power_kw" in form or "title" in form}
        if served is not None:
            names = served.knowledge.names
            context["makes"] = [{"name": spelling, "models": sorted(models.values(), key=str.lower)}
                                for spelling, models in sorted(names.values(), key=lambda m: m[0].lower())]
            context["choices"] = [(field, label, served.model.categories.get(field, [])) for field, label in CHOICES]
        if served is None or "make" not in form:
            return page(request, "index.html", **context)
        try:
            car = Car.model_validate(form)
        except ValidationError as exc:
            return page(request, "index.html", **{**context, "errors": _errors(exc)})
        unknown = unknown_names({"make": [car.make], "model": [car.model]}, served.knowledge)
        if unknown:
            errors = [{"field": u.field, "message": u.message(), "nearest": u.nearest} for u in unknown]
            return page(request, "index.html", **{**context, "errors": errors})
        try:
            served, valuation = await asyncio.wrap_future(batcher.submit(car.model_dump()))
        except NoChampion as exc:
            return page(request, "index.html", **{**context, "errors": [{"field": "model", "message": str(exc)}]})
        svg = price_range(valuation["interval_90"][0], valuation["predicted_price"],
                          valuation["interval_90"][1], valuation["asking_price"], settings.market_currency)
        return page(request, "index.html", **{**context, "valuation": valuation, "range_svg": svg})

    @app.get("/deals", response_class=HTMLResponse, include_in_schema=False)
    def deals(request: Request) -> HTMLResponse:
        """Current listings rated at least a level, biggest saving first, with the same filters as the API."""
        params = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
        filters = {"make": params.get("make"), "model": params.get("model"), "region": params.get("region"),
                   "max_price": None, "min_rating": params.get("min_rating", RATINGS[0])}
        errors, offset = [], 0
        try:
            filters["max_price"] = float(params["max_price"]) if "max_price" in params else None
            offset = min(max(0, int(params.get("offset", 0))), 1_000_000)  # as the API's limit
        except ValueError:
            errors.append("max price and offset must be numbers")
        if filters["min_rating"] not in RATINGS:
            errors.append(f"the rating must be one of {', '.join(RATINGS)}")
            filters["min_rating"] = RATINGS[0]
        if any(len(filters[k] or "") > 60 for k in ("make", "model", "region")):
            errors.append("make, model and region are at most 60 characters")
            filters.update(make=None, model=None, region=None)
        rows, total = [], 0
        if holder.served is not None:
            found, total = store.rated_listings(store.open_snapshot(settings.snapshot_path), limit=PAGE_SIZE,
                                                offset=offset, **filters)
            rows = found.to_dict("records")
        given = {k: v for k, v in filters.items() if v is not None}

        def link(at: int) -> str:
            return "/deals?" + urlencode({**given, "offset": at})

        return page(request, "deals.html", deals=rows, total=total, offset=offset, filters=filters, errors=errors,
                    ratings=RATINGS, prev_url=link(max(0, offset - PAGE_SIZE)) if offset else None,
                    next_url=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None)

    @app.get("/market", response_class=HTMLResponse, include_in_schema=False)
    def market(request: Request) -> HTMLResponse:
        """Plots of the snapshot: price against age by body type, depreciation of the top models, model error."""
        wh = store.open_snapshot(settings.snapshot_path)
        if not settings.snapshot_path.exists():
            return page(request, "market.html", price_age="", depreciation="", error="")
        points = store.price_against_age(wh, CHART_SERIES)
        curves = store.depreciation(wh, CHART_SERIES)
        errors = store.error_on_new_listings(wh)
        currency = settings.market_currency
        price_age = chart({str(s): list(zip(g["age_years"], g["market_price"])) for s, g in points.groupby("segment")},
                          title="asking price against age", x_label="age (years)", y_label=f"asking price ({currency})")
        depreciation = chart({str(c): list(zip(g["age"], g["median_price"])) for c, g in curves.groupby("car")},
                             title="depreciation", x_label="age (whole years)",
                             y_label=f"median asking price ({currency})", lines=True)
        first = errors["monitored_at"].min() if len(errors) else None
        error = chart({str(v)[:20]: [((t - first).total_seconds() / 86400, m) for t, m in
                                     zip(g["monitored_at"], g["mape"])] for v, g in errors.groupby("model_version")},
                      title="error on new listings", x_label="days since the first monitored batch",
                      y_label="mean absolute % error", lines=True, y_percent=True)
        return page(request, "market.html", price_age=price_age, depreciation=depreciation, error=error)
