"""What the price API accepts and answers: its requests with their allowed ranges (a value outside is a 422
naming the field and the range) and its answers, as OpenAPI shows them at /docs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from carprice.cleaning.rules import MAX_MILEAGE_KM, MAX_POWER_KW, MIN_MODEL_YEAR
from carprice.serving.rating import RATINGS
from scrapers.normalize import KM_PER_MILE


def _not_in_future(year: int) -> int:
    # A bound read at each request, not at import: a server running over New Year accepts next year's cars.
    latest = date.today().year + 1
    if year > latest:
        raise PydanticCustomError("model_year_range", "model year must be between {ge} and {le}",
                                  {"ge": MIN_MODEL_YEAR, "le": latest})
    return year


Text = Annotated[str | None, Field(default=None, max_length=100)]


class Car(BaseModel):
    """A car to value, as an owner or a dealer describes it (names as the listings' fields)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [{
        "make": "Volkswagen", "model": "Golf", "model_year": 2019, "mileage_km": 85000, "fuel": "petrol",
        "transmission": "manual", "power_kw": 110, "region": "Bavaria", "asking_price": 15900}]})

    make: str = Field(min_length=1, max_length=60)
    model: str = Field(min_length=1, max_length=60)
    model_year: Annotated[int, Field(ge=MIN_MODEL_YEAR), AfterValidator(_not_in_future)]
    mileage_km: float = Field(ge=0, le=MAX_MILEAGE_KM, description="odometer reading, in miles when mileage_unit is mi")
    mileage_unit: Literal["km", "mi"] = Field(default="km", description="the unit of mileage_km as given; the "
                                              "valuation reads it in km")
    first_registration: date | None = None
    fuel: Text = None
    transmission: Text = Field(default=None, max_length=100, description="gearbox: manual or automatic")
    body: Text = None
    power_kw: float | None = Field(default=None, gt=0, le=MAX_POWER_KW)
    color: Text = None
    doors: int | None = Field(default=None, ge=1, le=7)
    condition: Text = None
    seller_type: Text = Field(default=None, max_length=100, description="dealer or private")
    region: Text = None
    title: str | None = Field(default=None, max_length=300, description="words an ad would use, e.g. 'one owner'")
    description: str | None = Field(default=None, max_length=10_000)
    # Any market's currency: the bounds only stop what no currency's car price is (GET /healthz names the currency).
    asking_price: float | None = Field(default=None, gt=0, le=1e9,
                                       description="in the installation's market currency; rated against the "
                                                   "typical asking price when given")

    @model_validator(mode="after")
    def _mileage_in_km(self) -> Car:
        """A reading given in miles is valued in kilometres, like a listing's."""
        if self.mileage_unit == "mi":
            km = round(self.mileage_km * KM_PER_MILE, 1)
            if km > MAX_MILEAGE_KM:
                raise PydanticCustomError("mileage_range", "mileage must be at most {le} km ({mi:.0f} mi)",
                                          {"le": MAX_MILEAGE_KM, "mi": MAX_MILEAGE_KM / KM_PER_MILE})
            self.mileage_km, self.mileage_unit = km, "km"
        return self


def declared_ranges(model: type[BaseModel]) -> dict[str, dict[str, float]]:
    """Each field's declared bounds (ge, gt, le, lt), for error messages that give the whole allowed range."""
    out = {}
    for name, info in model.model_fields.items():
        bounds = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
        if bounds:
            out[name] = bounds
    return out


class Batch(BaseModel):
    """Up to ServingConfig.max_batch cars valued in one vectorized pass (the limit is checked by the route)."""

    model_config = ConfigDict(extra="forbid")

    cars: list[Car] = Field(min_length=1)
    effects: bool = Field(default=False, description="also the largest feature effects of each car (slower)")
    comparables: bool = Field(default=False, description="also comparable current listings of each car")


class Effect(BaseModel):
    feature: str
    value: float | str | None
    effect_pct: float = Field(description="how much this feature moves the price, in %")
    log_effect: float


class Comparable(BaseModel):
    url: str
    title: str | None
    model_year: float | None
    mileage_km: float | None
    fuel: str | None
    region: str | None
    same_model: bool
    asking_price: float | None
    predicted_price: float | None
    rating: str


class Valuation(BaseModel):
    """What the model says of one car. Prices are asking prices: the model learns them, not sale prices."""

    predicted_price: float = Field(description="the typical asking price of comparable listings")
    interval_90: tuple[float, float] = Field(description="90% of comparable listings ask within this range")
    asking_price: float | None
    rating: str | None = Field(description=f"one of {', '.join(RATINGS)}; null with no_rating_reason")
    no_rating_reason: str | None
    baseline_price: float | None = None
    effects: list[Effect] | None = None
    other_log_effect: float | None = Field(default=None, description="the effects not listed, summed (log); "
                                           "log(baseline) + listed + other = log(predicted)")
    comparables: list[Comparable] | None = None


class Answer(BaseModel):
    model_version: str
    data_as_of: str
    price_meaning: str


class ValuationAnswer(Answer):
    valuation: Valuation


class BatchAnswer(Answer):
    valuations: list[Valuation]


class Deal(BaseModel):
    url: str
    title: str | None
    make: str | None
    model: str | None
    model_year: float | None
    mileage_km: float | None
    region: str | None
    asking_price: float
    predicted_price: float
    interval_90: tuple[float, float]
    saving: float
    rating: str
    valued_by: str


class DealsAnswer(Answer):
    total: int
    limit: int
    offset: int
    deals: list[Deal]


class ChampionAnswer(BaseModel):
    model_version: str
    trained_at: str
    trained_because: str
    metrics: dict
    interval_log_offsets: tuple[float, float]
    data_as_of: str
    snapshot_published_at: str
    reload_problem: str | None
