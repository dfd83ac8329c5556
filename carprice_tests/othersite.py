"""A second local used-car site, unlike the simulated marketplace: US listings in dollars and miles, offset
pagination through a "more results" link, one ``Vehicle`` JSON-LD per detail page with ``additionalProperty``
pairs, placeholder prices, reposts of the same car under a new URL, and no listing dates anywhere."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from carprice_tests.conftest import serving_in_background

PAGE_SIZE = 40
# The year the site's cars are aged against (a fixed year, so the site is the same whenever the test runs).
CURRENT_YEAR = 2025

# make, model, body, price new in dollars, yearly depreciation, cylinders, drives offered
CATALOG = [
    ("Ford", "F-150", "pickup", 48_000, 0.10, 8, ("4wd", "rwd")),
    ("Ford", "Escape", "suv", 30_000, 0.14, 4, ("fwd", "4wd")),
    ("Chevrolet", "Silverado", "pickup", 47_000, 0.10, 8, ("4wd", "rwd")),
    ("Chevrolet", "Malibu", "sedan", 26_000, 0.16, 4, ("fwd",)),
    ("Toyota", "Camry", "sedan", 29_000, 0.09, 4, ("fwd",)),
    ("Toyota", "RAV4", "suv", 33_000, 0.08, 4, ("fwd", "4wd")),
    ("Toyota", "Tacoma", "pickup", 38_000, 0.07, 6, ("4wd", "rwd")),
    ("Honda", "Civic", "sedan", 25_000, 0.09, 4, ("fwd",)),
    ("Honda", "CR-V", "suv", 32_000, 0.09, 4, ("fwd", "4wd")),
    ("Nissan", "Altima", "sedan", 27_000, 0.15, 4, ("fwd",)),
    ("Jeep", "Wrangler", "suv", 40_000, 0.08, 6, ("4wd",)),
    ("Ram", "1500", "pickup", 46_000, 0.11, 8, ("4wd", "rwd")),
    ("Dodge", "Charger", "sedan", 36_000, 0.13, 8, ("rwd",)),
    ("Subaru", "Outback", "wagon", 31_000, 0.10, 4, ("4wd",)),
    ("Hyundai", "Elantra", "sedan", 22_000, 0.14, 4, ("fwd",)),
]
STATES = ["CA", "TX", "FL", "NY", "OH", "WA", "GA", "AZ"]
COLORS = ["white", "black", "silver", "gray", "red", "blue"]
CONDITIONS = {"excellent": 1.08, "good": 1.0, "fair": 0.85, "like new": 1.15}
TITLE_STATUS = {"clean": 1.0, "rebuilt": 0.72, "salvage": 0.55}
PLACEHOLDERS = ["$1", "Call for price", "$0"]


@dataclass(frozen=True)
class Car:
    """A car offered on the site, and what the page says about it."""

    make: str
    model: str
    body: str
    year: int
    miles: int
    color: str
    state: str
    seller: str
    dealer: bool
    drive: str
    cylinders: int
    condition: str
    title_status: str
    transmission: str
    fuel: str
    price_usd: int


@dataclass(frozen=True)
class Post:
    """One listing URL: a car, the days it is on the site, and whether its price is a placeholder."""

    id: int
    car: Car
    first_day: int
    last_day: int  # the last day it is on sale
    placeholder: str | None = None

    def price_text(self, day: int) -> str:
        """The price as the page states it on ``day`` (dealers trim their prices a little every day)."""
        if self.placeholder:
            return self.placeholder
        return str(int(round(self.car.price_usd * (1 - 0.004 * (day - self.first_day)), -1)))


def _car(rng: random.Random) -> Car:
    make, model, body, new_price, depreciation, cyl, drives = rng.choice(CATALOG)
    year = rng.randint(2008, 2024)
    age = CURRENT_YEAR - year
    miles = max(500, int(rng.gauss(12_000 * age + 4_000, 4_000 * (age + 1) ** 0.5)))
    condition = rng.choices(list(CONDITIONS), weights=[3, 5, 2, 1])[0]
    title = rng.choices(list(TITLE_STATUS), weights=[85, 8, 7])[0]
    drive = rng.choice(drives)
    price = (new_price * (1 - depreciation) ** age * max(0.35, 1 - miles / 400_000) * CONDITIONS[condition]
             * TITLE_STATUS[title] * (1.06 if drive == "4wd" else 1.0) * rng.lognormvariate(0, 0.07))
    dealer = rng.random() < 0.6
    seller = f"{rng.choice(['Lone Star', 'Sunset', 'Liberty', 'Eagle', 'Main Street'])} Motors" if dealer else \
        rng.choice(["Mike", "Sarah", "Jose", "Linda", "Dave"])
    return Car(make=make, model=model, body=body, year=year, miles=round(miles, -1), color=rng.choice(COLORS),
               state=rng.choice(STATES), seller=seller, dealer=dealer, drive=drive, cylinders=cyl,
               condition=condition, title_status=title, transmission=rng.choice(["Automatic"] * 9 + ["Manual"]),
               fuel="Gasoline" if body == "pickup" or rng.random() < 0.9 else "Hybrid",
               price_usd=max(1_500, int(round(price, -2))))


def generate_posts(seed: int = 7, listings: int = 600) -> list[Post]:
    """Every post the site will ever show: ~``listings`` on sale on day 1, some sold and some new each day after,
    ~10% with a placeholder price and ~15% re-posting a car already on the site under a new URL."""
    rng = random.Random(seed)
    posts: list[Post] = []
    ids = rng.sample(range(1_000_000, 9_999_999), int(listings * 1.5))
    for n in range(int(listings * 1.2)):
        # Most are on sale from day 1; a few appear on later days, a few sell each day.
        first_day = 1 if n < listings else rng.randint(2, 5)
        last_day = rng.randint(1, 5) if rng.random() < 0.25 else 99
        if posts and rng.random() < 0.15:
            original = rng.choice(posts[-200:])
            # The seller re-posts the car under a new URL, usually a little cheaper.
            car = Car(**{**original.car.__dict__, "price_usd": int(original.car.price_usd * rng.uniform(0.95, 1.0))})
        else:
            car = _car(rng)
        placeholder = rng.choice(PLACEHOLDERS) if rng.random() < 0.10 else None
        posts.append(Post(id=ids[n], car=car, first_day=first_day, last_day=last_day, placeholder=placeholder))
    return posts


def posts_on(posts: list[Post], day: int) -> list[Post]:
    """The posts on sale on ``day``, in the site's order (by id: the site sorts by it)."""
    return sorted((p for p in posts if p.first_day <= day <= p.last_day), key=lambda p: p.id)


def vehicle_json(post: Post, day: int) -> dict:
    """The single schema.org ``Vehicle`` entity of a detail page (no listing date: the site publishes none)."""
    car = post.car
    return {
        "@context": "https://schema.org", "@type": "Vehicle",
        "name": f"{car.year} {car.make} {car.model}",
        "brand": {"@type": "Brand", "name": car.make}, "model": car.model,
        "vehicleModelDate": str(car.year), "color": car.color, "bodyType": car.body, "fuelType": car.fuel,
        "vehicleTransmission": car.transmission,
        "mileageFromOdometer": {"@type": "QuantitativeValue", "value": car.miles, "unitCode": "SMI"},
        "additionalProperty": [
            {"@type": "PropertyValue", "name": "title_status", "value": car.title_status},
            {"@type": "PropertyValue", "name": "drive", "value": car.drive},
            {"@type": "PropertyValue", "name": "cylinders", "value": f"{car.cylinders} cylinders"},
            {"@type": "PropertyValue", "name": "condition", "value": car.condition},
        ],
        "offers": {
            "@type": "Offer", "price": post.price_text(day), "priceCurrency": "USD",
            "seller": {"@type": "AutoDealer" if car.dealer else "Person", "name": car.seller},
            "availableAtOrFrom": {"@type": "Place", "address": {"@type": "PostalAddress", "addressRegion": car.state}},
        },
    }


def _dollars(post: Post, day: int) -> str:
    text = post.price_text(day)
    return text if not text.isdigit() else f"${int(text):,}"


def search_page(posts: list[Post], day: int, offset: int) -> str:
    """A results page: 40 cards from ``offset``, and a "more results" link while there are more."""
    shown = posts_on(posts, day)
    cards = "".join(
        f'<div class="result"><a class="result-title" href="/listing/{p.id}.html">'
        f"{escape(p.car.make)} {escape(p.car.model)} {p.car.year}</a>"
        f'<span class="price">{escape(_dollars(p, day))}</span><span class="miles">{p.car.miles:,} mi</span></div>'
        for p in shown[offset:offset + PAGE_SIZE])
    more = (f'<a class="more" href="/search?offset={offset + PAGE_SIZE}">more results</a>'
            if offset + PAGE_SIZE < len(shown) else "")
    return f"<html><head><title>Used cars</title></head><body><section>{cards}</section>{more}</body></html>"


def detail_page(post: Post, day: int) -> str:
    """A detail page: the visible text and one JSON-LD script."""
    car = post.car
    script = json.dumps(vehicle_json(post, day)).replace("</", "<\\/")
    return (f'<html><head><script type="application/ld+json">{script}</script></head><body>'
            f"<h2>{car.year} {escape(car.make)} {escape(car.model)} - {escape(_dollars(post, day))}</h2>"
            f"<p>odometer: {car.miles:,} mi, title: {car.title_status}, {escape(car.state)}</p></body></html>")


@contextmanager
def running_othersite(seed: int = 7, day: int = 1, listings: int = 600) -> Iterator[str]:
    """The site as it is on ``day``, served on a free loopback port; yields its base URL."""
    posts = generate_posts(seed, listings)
    by_id = {p.id: p for p in posts_on(posts, day)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            body, ctype = None, "text/html; charset=utf-8"
            if url.path == "/robots.txt":
                body, ctype = "User-agent: *\nAllow: /\n", "text/plain"
            elif url.path == "/search":
                offset = int(parse_qs(url.query).get("offset", ["0"])[0])
                body = search_page(posts, day, offset)
            elif url.path.startswith("/listing/") and url.path.endswith(".html"):
                post = by_id.get(int(url.path.removeprefix("/listing/").removesuffix(".html") or 0))
                body = detail_page(post, day) if post else None
            data = (body or "not found").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    with serving_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"
