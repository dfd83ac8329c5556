"""Seeded generator of a used-car market that changes day by day.

Every listing is a pure function of ``(seed, listing id)``: its car, its asking
price and the way its page is written (market shifts in the config scale the
price of a segment, still as a pure function of the listing's date).  Which listings are on sale on a given
day is a cheap vectorised function of the ids, so a market of any size costs
nothing until a page of it is asked for.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from carprice.config import market_date, market_day
from carprice.market.catalogue import MODELS, ModelSpec
from carprice.market.faults import validate_faults
from carprice.market.shifts import MarketShift, shift_multiplier, validate_shifts

# A model year goes on sale in the autumn before it (as real launches do).
_LAUNCH_MONTH = 9
_PRICE_BASE_YEAR = 2024
_MAX_DAYS_ON_MARKET = 150

CONDITIONS = ("excellent", "good", "fair", "poor")
_CONDITION_P = (0.2, 0.55, 0.2, 0.05)
_CONDITION_FACTOR = {"excellent": 1.08, "good": 1.0, "fair": 0.88, "poor": 0.72}

# (region, currency, mileage unit, price factor)
REGIONS = (
    ("Île-de-France", "EUR", "km", 1.03),
    ("Bavaria", "EUR", "km", 1.04),
    ("North Rhine-Westphalia", "EUR", "km", 1.0),
    ("Lombardy", "EUR", "km", 1.02),
    ("Catalonia", "EUR", "km", 0.99),
    ("North Holland", "EUR", "km", 1.05),
    ("Flanders", "EUR", "km", 1.01),
    ("Vienna", "EUR", "km", 1.03),
    ("Masovia", "EUR", "km", 0.9),
    ("Lisbon", "EUR", "km", 0.97),
    ("Greater London", "GBP", "mi", 1.0),
)
_REGION_P = (0.14, 0.13, 0.13, 0.1, 0.09, 0.08, 0.07, 0.06, 0.07, 0.05, 0.08)
GBP_PER_EUR = 0.85

COLORS = ("black", "white", "grey", "silver", "blue", "red", "green", "brown", "yellow", "orange")
_COLOR_P = (0.22, 0.2, 0.18, 0.14, 0.11, 0.07, 0.03, 0.02, 0.015, 0.015)

# Words sellers put in titles and descriptions, with what they do to the price.
TRIM_WORDS = {
    "Sport": 1.04, "Premium": 1.05, "Navi": 1.02, "Leather": 1.03, "Panorama roof": 1.03,
    "Full service history": 1.04, "Heated seats": 1.01, "LED headlights": 1.02,
    "Towbar": 1.01, "Adaptive cruise": 1.02, "One owner": 1.03, "Top trim": 1.06,
}
DAMAGE_WORDS = {"needs work": 0.8, "accident damage": 0.7, "salvage": 0.5, "for parts": 0.35}

_MAKE_ALIASES = {
    "Volkswagen": ("VW", "Volkswagen", "VOLKSWAGEN", "volkswagen"),
    "Mercedes-Benz": ("Mercedes", "Mercedes Benz", "MERCEDES-BENZ", "Mercedes-Benz"),
    "Citroën": ("Citroen", "CITROEN", "Citroën"),
    "Škoda": ("Skoda", "SKODA", "Škoda"),
    "Skoda": ("Škoda", "SKODA", "Skoda"),
    "BMW": ("bmw", "BMW"),
    "Alfa Romeo": ("Alfa", "ALFA ROMEO", "Alfa Romeo"),
    "Land Rover": ("Landrover", "LAND ROVER", "Land Rover"),
}


@dataclass(frozen=True)
class MarketConfig:
    """The knobs of a simulated market; the same config and day give the same site.

    ``faults`` names the site breakages to inject (see ``carprice.market.faults``); ``shifts`` are real
    changes in what a segment of cars is worth from some day on (see ``carprice.market.shifts``). Day numbers
    are those of the one market calendar (``carprice.config.market_date``).
    """

    seed: int = 7
    daily_new: int = 100
    mean_days_on_market: float = 30.0
    warmup_days: int = _MAX_DAYS_ON_MARKET
    inflation_per_year: float = 0.03
    repost_rate: float = 0.03
    absurd_price_rate: float = 0.01
    microdata_share: float = 0.15
    page_size: int = 50
    faults: frozenset[str] = frozenset()
    shifts: tuple[MarketShift, ...] = ()

    def __post_init__(self) -> None:
        # Any iterable is accepted (shifts also as a text spec); the config keeps a frozenset and a tuple
        # so it stays hashable.
        object.__setattr__(self, "faults", validate_faults(self.faults))
        object.__setattr__(self, "shifts", validate_shifts(self.shifts))

    @classmethod
    def for_active_listings(cls, n: int, **kwargs) -> MarketConfig:
        """A config whose market holds about ``n`` listings on any day."""
        mean = kwargs.pop("mean_days_on_market", cls.mean_days_on_market)
        return cls(daily_new=max(1, round(n / mean)), mean_days_on_market=mean, **kwargs)


@dataclass(frozen=True)
class Car:
    """What is physically for sale: the truth behind a listing page."""

    spec: ModelSpec
    model_year: int
    first_registration: date
    mileage_km: int
    fuel: str
    transmission: str
    power_kw: int
    color: str
    doors: int
    condition: str
    trim_words: tuple[str, ...]
    damage_word: str | None


@dataclass(frozen=True)
class Listing:
    """One listing: the car, the offer, and how the seller wrote the page."""

    id: int
    listed_day: int
    days_on_market: int
    car: Car
    region: str
    currency: str
    mileage_unit: str
    seller_type: str
    seller_name: str
    fair_price_eur: float
    asking_price_eur: float
    repost_of: int | None
    absurd_price: bool
    page_format: str
    make_spelling: str
    price_style: int
    missing: frozenset[str] = field(default_factory=frozenset)
    price_cuts: tuple[tuple[int, float], ...] = ()

    @property
    def slug(self) -> str:
        words = f"{self.car.spec.make} {self.car.spec.model} {self.car.model_year}"
        ascii_words = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode().lower()
        return "-".join(w for w in ("".join(c for c in w if c.isalnum()) for w in ascii_words.split()) if w)

    @property
    def path(self) -> str:
        return f"/cars/{self.id}-{self.slug}"

    def price_on(self, day: int) -> float:
        """Asking price in euros on ``day``, after any price cuts."""
        price = self.asking_price_eur
        for after_days, factor in self.price_cuts:
            if day - self.listed_day >= after_days:
                price *= factor
        return price

    def price_in_currency(self, day: int) -> int:
        """The asking price as the seller states it: local currency, rounded like people do."""
        price = self.price_on(day) * (GBP_PER_EUR if self.currency == "GBP" else 1.0)
        if self.absurd_price:
            return int(price)
        if self.seller_type == "dealer":
            return int(max(1, round(price / 100.0)) * 100 - 10)
        return int(max(1, round(price / 250.0)) * 250)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, ids: np.ndarray, stream: int) -> np.ndarray:
    """A uniform [0, 1) draw per id, independent across seeds and streams."""
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed * 1_000_003 + stream) + ids.astype(np.uint64) * np.uint64(0x2545F4914F6CDD1D))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class Market:
    """A deterministic used-car market: which listings exist on which day, and what they say."""

    def __init__(self, config: MarketConfig | None = None):
        self.config = config or MarketConfig()
        weights = np.array([1.0 / math.sqrt(m.new_price_eur) for m in MODELS])
        self._model_weights = weights / weights.sum()

    # --- calendar -------------------------------------------------------------
    def date_of(self, day: int) -> date:
        """The calendar date of market day ``day``."""
        return market_date(day)

    def _listed_day(self, ids: np.ndarray) -> np.ndarray:
        return ids // self.config.daily_new - self.config.warmup_days

    def _days_on_market(self, ids: np.ndarray) -> np.ndarray:
        u = _uniform(self.config.seed, ids, stream=1)
        days = np.ceil(-np.log1p(-u) * self.config.mean_days_on_market)
        return np.clip(days, 1, _MAX_DAYS_ON_MARKET).astype(np.int64)

    def active_ids(self, day: int) -> np.ndarray:
        """Ids of the listings on sale on ``day``, newest first."""
        cfg = self.config
        first = max(0, (day - _MAX_DAYS_ON_MARKET + cfg.warmup_days) * cfg.daily_new)
        last = (day + cfg.warmup_days + 1) * cfg.daily_new
        ids = np.arange(first, last, dtype=np.int64)
        listed = self._listed_day(ids)
        active = (listed <= day) & (listed + self._days_on_market(ids) > day)
        return ids[active][::-1]

    def is_active(self, listing_id: int, day: int) -> bool:
        ids = np.array([listing_id], dtype=np.int64)
        listed = int(self._listed_day(ids)[0])
        return listed <= day < listed + int(self._days_on_market(ids)[0])

    # --- one listing ------------------------------------------------------------
    def _available_models(self, on: date) -> np.ndarray:
        return _available_models(on.year + (1 if on.month >= _LAUNCH_MONTH else 0))

    def _car(self, listing_id: int, listed_on: date) -> Car:
        rng = np.random.default_rng((self.config.seed, listing_id, 11))
        newest_model_year = listed_on.year + (1 if listed_on.month >= _LAUNCH_MONTH else 0)
        candidates = self._available_models(listed_on)
        p = self._model_weights[candidates] / self._model_weights[candidates].sum()
        spec = MODELS[int(rng.choice(candidates, p=p))]
        age = min(20.0, rng.gamma(2.2, 3.2))
        last_year = min(spec.last_year or newest_model_year, newest_model_year)
        model_year = int(np.clip(round(listed_on.year - age), max(spec.first_year, 2004), last_year))
        reg_month = int(rng.integers(1, 13))
        first_registration = date(min(model_year, listed_on.year), reg_month, int(rng.integers(1, 29)))
        if first_registration > listed_on:
            first_registration = listed_on - timedelta(days=int(rng.integers(5, 60)))
        years = max(0.05, (listed_on - first_registration).days / 365.25)
        fuel = spec.fuels[int(rng.choice(len(spec.fuels), p=_fuel_p(len(spec.fuels))))]
        annual_km = rng.lognormal(math.log(16_000 if fuel == "diesel" else 12_500), 0.35)
        mileage = int(round(max(10, annual_km * years) / 10) * 10)
        lo, hi = spec.power_kw
        power = round(lo + (hi - lo) * rng.beta(1.6, 2.8))
        transmission = "automatic" if rng.random() < spec.auto_share else "manual"
        n_trim = int(rng.choice(4, p=(0.35, 0.35, 0.2, 0.1)))
        trim = tuple(rng.choice(list(TRIM_WORDS), size=n_trim, replace=False))
        damage_draw = rng.random()
        damage = None
        if damage_draw < 0.012:
            damage = "for parts"
        elif damage_draw < 0.022:
            damage = "salvage"
        elif damage_draw < 0.045:
            damage = "accident damage"
        elif damage_draw < 0.07:
            damage = "needs work"
        doors = 2 if spec.body in ("coupe", "convertible") else int(rng.choice((3, 5), p=(0.15, 0.85)))
        return Car(
            spec=spec, model_year=model_year, first_registration=first_registration,
            mileage_km=mileage, fuel=fuel, transmission=transmission, power_kw=power,
            color=str(rng.choice(COLORS, p=_COLOR_P)), doors=doors,
            condition=str(rng.choice(CONDITIONS, p=_CONDITION_P)),
            trim_words=tuple(str(t) for t in trim), damage_word=damage,
        )

    def fair_price(self, car: Car, listed_on: date, region_factor: float, seller_type: str) -> float:
        """What the car is worth on ``listed_on`` before noise: the market's true pricing rule, shifts included."""
        spec = car.spec
        years_since_base = (listed_on - date(_PRICE_BASE_YEAR, 1, 1)).days / 365.25
        inflation = (1 + self.config.inflation_per_year) ** years_since_base
        lo, hi = spec.power_kw
        power_factor = (car.power_kw / ((lo + hi) / 2)) ** 0.45
        age = max(0.0, (listed_on - car.first_registration).days / 365.25)
        decay = 0.14 if car.fuel == "electric" else 0.105
        depreciation = 0.82 * math.exp(-decay * age) * math.exp(-0.0024 * car.mileage_km / 1000)
        fuel_factor = {"diesel": 1.02, "hybrid": 1.06, "lpg": 0.9}.get(car.fuel, 1.0)
        gearbox = 1.05 if car.transmission == "automatic" else 1.0
        trim = math.prod(TRIM_WORDS[w] for w in car.trim_words)
        damage = DAMAGE_WORDS.get(car.damage_word, 1.0) if car.damage_word else 1.0
        seller = 1.07 if seller_type == "dealer" else 0.96
        value = (spec.new_price_eur * inflation * power_factor * depreciation * fuel_factor * gearbox
                 * trim * damage * seller * region_factor * _CONDITION_FACTOR[car.condition])
        # The shift multiplies the floored price so a shifted listing is worth exactly factor times its twin.
        shift = shift_multiplier(self.config.shifts, spec.body, car.fuel, market_day(listed_on))
        return max(300.0, value) * shift

    def listing(self, listing_id: int) -> Listing:
        """The listing with this id, whether or not it is on sale today."""
        return _cached_listing(self, listing_id)

    def _build_listing(self, listing_id: int) -> Listing:
        cfg = self.config
        ids = np.array([listing_id], dtype=np.int64)
        listed_day = int(self._listed_day(ids)[0])
        listed_on = self.date_of(listed_day)
        rng = np.random.default_rng((cfg.seed, listing_id, 23))
        repost_of = None
        car_id = listing_id
        if rng.random() < cfg.repost_rate and listing_id > 3000:
            repost_of = listing_id - int(rng.integers(cfg.daily_new, 20 * cfg.daily_new + 1))
            repost_of = max(0, repost_of)
            car_id = repost_of
        car_listed_on = self.date_of(int(self._listed_day(np.array([car_id]))[0]))
        car = self._car(car_id, car_listed_on)
        seller_rng = np.random.default_rng((cfg.seed, car_id, 29))
        region_i = int(seller_rng.choice(len(REGIONS), p=_REGION_P))
        region, currency, unit, region_factor = REGIONS[region_i]
        seller_type = "dealer" if seller_rng.random() < 0.55 else "private"
        seller_name = (f"Autohaus {int(seller_rng.integers(1, 400)):03d}" if seller_type == "dealer"
                       else "Private seller")
        fair = self.fair_price(car, listed_on, region_factor, seller_type)
        noise = math.exp(rng.normal(0, 0.06 if seller_type == "dealer" else 0.1))
        asking = fair * noise
        absurd = rng.random() < cfg.absurd_price_rate
        if absurd:
            asking = float(rng.choice([1, 123, 999_999, 12_345_678, asking * 100, asking / 1000]))
        cuts = []
        if rng.random() < 0.45:
            cuts.append((int(rng.integers(10, 25)), float(rng.uniform(0.9, 0.97))))
            if rng.random() < 0.4:
                cuts.append((int(rng.integers(30, 60)), float(rng.uniform(0.9, 0.96))))
        missing = {name for name, share in _MISSING_SHARE.items() if rng.random() < share}
        aliases = _MAKE_ALIASES.get(car.spec.make, (car.spec.make, car.spec.make.upper()))
        return Listing(
            id=listing_id, listed_day=listed_day,
            days_on_market=int(self._days_on_market(ids)[0]), car=car, region=region,
            currency=currency, mileage_unit=unit if rng.random() > 0.02 else "mi",
            seller_type=seller_type, seller_name=seller_name, fair_price_eur=fair,
            asking_price_eur=asking, repost_of=repost_of, absurd_price=absurd,
            page_format="microdata" if rng.random() < cfg.microdata_share else "json-ld",
            make_spelling=str(aliases[int(rng.integers(len(aliases)))]) if rng.random() < 0.35 else car.spec.make,
            price_style=int(rng.integers(0, 5)), missing=frozenset(missing), price_cuts=tuple(cuts),
        )

    # --- bulk views for tests and analysis --------------------------------------
    def listings_on(self, day: int) -> list[Listing]:
        return [self.listing(int(i)) for i in self.active_ids(day)]


_MISSING_SHARE = {
    "power": 0.06, "fuel": 0.03, "transmission": 0.04, "body": 0.05, "color": 0.08,
    "doors": 0.1, "mileage": 0.015, "first_registration": 0.2, "model_year": 0.01,
    "condition": 0.15, "make": 0.003,
}


def _fuel_p(n: int) -> np.ndarray:
    p = np.array([0.6 ** k for k in range(n)])
    return p / p.sum()


@lru_cache(maxsize=64)
def _available_models(newest_model_year: int) -> np.ndarray:
    return np.array([i for i, m in enumerate(MODELS) if m.first_year <= newest_model_year], dtype=np.int64)


@lru_cache(maxsize=200_000)
def _cached_listing(market: Market, listing_id: int) -> Listing:
    return market._build_listing(listing_id)
