"""The price API: FastAPI routes over the champion being served (``ModelHolder``) and the published snapshot.

Routes are thin: they check what the client sent, call ``serving.valuation`` or ``serving.store`` and shape the
answer. Every answer names the model version that made it (body and ``X-Model-Version``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

import orjson
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.responses import JSONResponse as StdlibJSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from carprice.config import ServingConfig, Settings
from carprice.serving import store
from carprice.serving.batching import NoChampion, ValuationBatcher
from carprice.serving.holder import ModelHolder, Served
from carprice.serving.pages import add_pages
from carprice.serving.rating import RATINGS
from carprice.serving.schemas import (
    Batch,
    BatchAnswer,
    Car,
    ChampionAnswer,
    DealsAnswer,
    ValuationAnswer,
    declared_ranges,
)
from carprice.serving.valuation import PRICE_MEANING, unknown_names, value_cars

API = "/api/v1"
VERSION_HEADER = "X-Model-Version"
NO_MODEL = "none"


class JSONResponse(StdlibJSONResponse):
    """A JSON answer encoded by orjson: a valuation with its effects and comparables in a tenth of the standard
    encoder's time (it was a tenth of a single valuation's CPU), a batch of 10,000 in milliseconds."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


class NotReady(Exception):
    """No champion is serving yet (503 with the reason)."""


class BadCars(Exception):
    """Cars the warehouse has never seen (422 naming the nearest known makes or models)."""

    def __init__(self, errors: list[dict]):
        self.errors = errors


class Guard:
    """ASGI middleware around the routes: a body over ``max_bytes`` is refused (413) before it is parsed (one
    without a Content-Length is counted as it arrives), and an answer whose route did not name the model version
    (a 413, a 422 from validation) gets the serving one in its header."""

    def __init__(self, app, holder: ModelHolder, max_bytes: int):
        self.app, self.holder, self.max_bytes = app, holder, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge(413, self._detail())
            return message

        async def versioned_send(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == _HEADER_KEY for k, _ in headers):
                    headers.append((_HEADER_KEY, self._version().encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, counted_receive, versioned_send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    def _detail(self) -> str:
        return f"request body over {self.max_bytes:,} bytes"

    def _version(self) -> str:
        served = self.holder.served
        return served.version if served else NO_MODEL

    async def _too_large(self, scope, receive, send) -> None:
        version = self._version()
        response = JSONResponse({"detail": self._detail(),
                                 "model_version": None if version == NO_MODEL else version},
                                status_code=413, headers={VERSION_HEADER: version, "Connection": "close"})
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """A body grew past the limit while it was read (an HTTP error, so the route's body reading lets it through)."""


_HEADER_KEY = VERSION_HEADER.lower().encode()


def _field(loc: tuple) -> str:
    """A validation error's location as a client names the field: ``mileage_km``, ``cars[3].model_year``."""
    parts = [p for p in loc if p not in ("body", "query")]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "body"


_CAR_RANGES = declared_ranges(Car)


def _allowed(error: dict) -> dict | None:
    """The allowed range (every declared bound of the field) or length a validation error names, if any."""
    ctx = {k: v for k, v in (error.get("ctx") or {}).items() if k in ("ge", "gt", "le", "lt", "min_length",
                                                                      "max_length", "expected")}
    name = error["loc"][-1] if error.get("loc") else None
    if ctx.keys() & {"ge", "gt", "le", "lt"} and name in _CAR_RANGES:
        ctx = {**_CAR_RANGES[name], **ctx}
    return ctx or None


# Where the app serves Swagger UI's script and style for /docs.
SWAGGER_STATIC = "/static/swagger-ui"


def create_app(settings: Settings, config: ServingConfig | None = None, holder: ModelHolder | None = None,
               poll: bool = True) -> FastAPI:
    """The price API for one installation: it serves the champion named by ``settings.snapshot_path`` and
    reloads it when a new snapshot names another (``poll``: in a background thread)."""
    config = config or ServingConfig()
    holder = holder or ModelHolder(settings.snapshot_path, config)
    batcher = ValuationBatcher(holder, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if poll:
            holder.start()
        else:
            holder.refresh()
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()
            holder.stop()

    # The interactive docs load Swagger UI from the app itself (swagger-ui-bundle), not from a CDN: they work
    # without internet, like the pages.
    app = FastAPI(title="carprice valuation API", version="1", lifespan=lifespan, docs_url=None,
                  default_response_class=JSONResponse,
                  description="Typical asking prices of used cars from the carprice champion model. The model "
                              "learns asking prices, not sale prices.")
    app.mount(SWAGGER_STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: docs",
                                   swagger_js_url=f"{SWAGGER_STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_STATIC}/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    app.state.holder = holder
    app.add_middleware(Guard, holder=holder, max_bytes=config.max_body_bytes)

    def serving() -> Served:
        served = holder.served
        if served is None:
            raise NotReady(holder.problem or "no champion loaded yet")
        return served

    def answer(served: Served, body: dict, status: int = 200) -> JSONResponse:
        return JSONResponse({"model_version": served.version, "data_as_of": served.as_of.isoformat(),
                             "price_meaning": PRICE_MEANING, **body}, status_code=status,
                            headers={VERSION_HEADER: served.version})

    @app.exception_handler(NotReady)
    async def not_ready(_: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "model_version": None}, status_code=503,
                            headers={VERSION_HEADER: NO_MODEL, "Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        served = holder.served
        return JSONResponse({"detail": exc.detail, "model_version": served.version if served else None},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BadCars)
    async def bad_cars(_: Request, exc: BadCars) -> JSONResponse:
        served = holder.served
        return JSONResponse({"detail": exc.errors, "model_version": served.version if served else None},
                            status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        served = holder.served
        detail = [{"field": _field(e["loc"]), "message": e["msg"], "allowed": _allowed(e)} for e in exc.errors()]
        return JSONResponse({"detail": detail, "model_version": served.version if served else None},
                            status_code=422)

    def check_names(served: Served, cars: dict[str, list], prefix: str = "") -> None:
        unknown = unknown_names(cars, served.knowledge)
        if unknown:
            raise BadCars([{"field": f"{prefix.format(u.index)}{u.field}", "message": u.message(),
                            "nearest": u.nearest} for u in unknown[:100]])

    @app.post(f"{API}/valuations", response_model=ValuationAnswer, tags=["valuations"],
              responses={422: {"description": "unknown make or model, or a value outside its allowed range"},
                         503: {"description": "no champion serving yet"}})
    async def value_one(car: Car, effects: bool = Query(True, description=(
            "with the features that move the price most (explaining a car costs about as much CPU as the rest of "
            "its valuation; leave them out to price many cars faster)"))) -> JSONResponse:
        """The typical asking price of one car, its 90% interval, a rating of its asking price, the features that
        move its price most, and comparable listings on sale now."""
        check_names(serving(), {"make": [car.make], "model": [car.model]})
        try:
            # Valued with the other cars waiting now, in one pass (serving.batching).
            served, valuation = await asyncio.wrap_future(batcher.submit(car.model_dump(), effects))
        except NoChampion as exc:
            raise NotReady(str(exc)) from exc
        return answer(served, {"valuation": valuation})

    @app.post(f"{API}/valuations:batch", response_model=BatchAnswer, tags=["valuations"],
              responses={413: {"description": "body too large"}, 422: {"description": "a car is not valid"}})
    def value_many(batch: Batch) -> JSONResponse:
        """Up to 10,000 cars valued in one vectorized pass; effects and comparables on request."""
        served = serving()
        if len(batch.cars) > config.max_batch:
            raise BadCars([{"field": "cars", "message": f"at most {config.max_batch:,} cars in one batch, got "
                                                        f"{len(batch.cars):,}", "allowed": {"max_length":
                                                                                            config.max_batch}}])
        # Column by column: cheaper than a dict per car for 10,000 cars.
        cars = {name: [getattr(c, name) for c in batch.cars] for name in Car.model_fields}
        check_names(served, cars, "cars[{}].")
        valuations = value_cars(served.model, served.knowledge, cars, served.as_of, effects=batch.effects,
                                top=config.top_effects)
        if batch.comparables:
            for valuation, car in zip(valuations, batch.cars):
                valuation["comparables"] = served.comparables.nearest(car.make, car.model, car.model_year,
                                                                      car.mileage_km, config.comparables)
        return answer(served, {"valuations": valuations})

    @app.get(f"{API}/deals", response_model=DealsAnswer, tags=["deals"])
    def deals(make: str | None = Query(None, max_length=60), model: str | None = Query(None, max_length=60),
              max_price: float | None = Query(None, gt=0), region: str | None = Query(None, max_length=60),
              min_rating: Literal[RATINGS] = Query(RATINGS[0], description="great: asking below the interval"),
              limit: int = Query(50, ge=1, le=config.deals_page_max),
              offset: int = Query(0, ge=0, le=1_000_000)) -> JSONResponse:
        """Current listings rated at least ``min_rating`` by the model, biggest saving first, a page at a time."""
        served = serving()
        page, total = store.rated_listings(store.open_snapshot(settings.snapshot_path), make=make, model=model,
                                           max_price=max_price, region=region, min_rating=min_rating, limit=limit,
                                           offset=offset)
        rows = [{"url": r.url, "title": r.title, "make": r.make, "model": r.model, "model_year": r.model_year,
                 "mileage_km": r.mileage_km, "region": r.region, "asking_price": r.asking_price,
                 "predicted_price": r.predicted_price,
                 "interval_90": [r.lower_price, r.upper_price], "saving": r.saving,
                 "rating": r.rating, "valued_by": r.model_version} for r in page.itertuples()]
        rows = [{k: None if not isinstance(v, str | list) and pd.isna(v) else v for k, v in row.items()}
                for row in rows]
        return answer(served, {"total": total, "limit": limit, "offset": offset, "deals": rows})

    @app.get(f"{API}/models/champion", response_model=ChampionAnswer, tags=["models"])
    def champion_model() -> JSONResponse:
        """The model serving now: version, when and why it was trained, its metrics and interval."""
        served = serving()
        reg = served.registered
        return JSONResponse({"model_version": reg.version, "trained_at": reg.trained_at.isoformat(),
                             "trained_because": reg.trained_because, "metrics": reg.metrics,
                             "interval_log_offsets": list(served.model.interval),
                             "data_as_of": served.as_of.isoformat(),
                             "snapshot_published_at": served.snapshot_published_at.isoformat(),
                             "reload_problem": holder.problem}, headers={VERSION_HEADER: reg.version})

    @app.get(f"{API}/healthz", tags=["health"])
    def healthz() -> dict:
        """The process answers (whether or not a model is loaded), and the currency its prices are in."""
        served = holder.served
        return {"status": "ok", "model_version": served.version if served else None,
                "currency": settings.market_currency}

    @app.get(f"{API}/readyz", tags=["health"], responses={503: {"description": "no champion loaded yet"}})
    def readyz() -> JSONResponse:
        """Ready only once a champion is loaded."""
        served = serving()
        return JSONResponse({"status": "ready", "model_version": served.version, "reload_problem": holder.problem},
                            headers={VERSION_HEADER: served.version})

    add_pages(app, settings, config, holder, batcher)
    return app
