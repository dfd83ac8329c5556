"""The web pages: rendered by the app from the same code as the API (test client), and used in real headless
Chromium: fill the owner's form, submit it, read the price and rating; open the deals and the market."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from carprice.serving.app import create_app
from carprice.serving.server import running_api
from carprice_tests.serving.test_api import common_car

# A trained champion and a published snapshot behind the pages: the integration tier.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(installation):
    with TestClient(create_app(installation.settings, poll=False)) as c:
        yield c


def test_the_owner_page_values_a_car_from_its_query(client, installation):
    car = common_car(installation)
    blank = client.get("/")
    assert blank.status_code == 200 and f'<option value="{car["make"]}"' in blank.text
    assert 'id="answer"' not in blank.text
    page = client.get("/", params={k: car[k] for k in ("make", "model", "model_year", "mileage_km",
                                                       "asking_price")})
    api = client.post("/api/v1/valuations", json={k: car[k] for k in ("make", "model", "model_year", "mileage_km",
                                                                        "asking_price")}).json()
    price = re.search(r'id="price">([\d,]+) EUR<', page.text).group(1)
    assert int(price.replace(",", "")) == api["valuation"]["predicted_price"]
    assert re.search(r'id="rating">(\w+)<', page.text).group(1) == api["valuation"]["rating"]
    assert page.text.count("<tr>") >= 5 + 1 and "learns what sellers ask, not what buyers pay" in page.text
    assert page.headers["X-Model-Version"] == api["model_version"]


def test_the_owner_page_explains_bad_input(client, installation):
    car = common_car(installation)
    wrong = client.get("/", params={**car, "make": car["make"] + "x", "title": ""}).text
    assert "unknown make" in wrong and car["make"] in re.search(r'id="errors">(.*?)</ul>', wrong, re.S).group(1)
    impossible = client.get("/", params={**car, "model_year": 3000, "mileage_km": -1, "title": ""}).text
    assert "model_year" in impossible and "mileage_km" in impossible and 'id="answer"' not in impossible


def test_deals_and_market_pages(client):
    deals = client.get("/deals", params={"min_rating": "good"})
    assert deals.status_code == 200 and re.search(r'id="total">([\d,]+) listings', deals.text)
    assert "/deals?" in deals.text and "rating-good" in deals.text
    assert "must be one of" in client.get("/deals", params={"min_rating": "superb"}).text
    market = client.get("/market")
    assert market.status_code == 200 and market.text.count("<svg") >= 2
    for asset in ("/static/style.css", "/static/form.js"):
        assert client.get(asset).status_code == 200
    for page in (client.get("/").text, market.text):  # every script, style and chart from the app itself
        assert not re.search(r'(src|href)="(https?:)?//', page)


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen(
            [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            assert time.monotonic() < deadline and self.proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        from websockets.sync.client import connect

        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == ident:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium package is not installed")
def test_an_owner_fills_the_form_in_a_browser_and_reads_price_and_rating(installation, tmp_path):
    car = common_car(installation)
    with running_api(installation.settings) as url:
        browser = Browser(tmp_path / "profile")
        try:
            browser.open(f"{url}/")
            browser.wait_for("document.querySelector('#make option:nth-child(2)') !== null")
            # The model list follows the make, as a person choosing them sees it.
            browser.js(f"""(() => {{
                const make = document.getElementById('make');
                make.value = {json.dumps(car['make'])};
                make.dispatchEvent(new Event('change'));
                document.getElementById('model').value = {json.dumps(car['model'])};
                document.getElementById('model_year').value = {car['model_year']};
                document.getElementById('mileage_km').value = {int(car['mileage_km'])};
                document.getElementById('asking_price').value = {int(car['asking_price'])};
                document.getElementById('submit').click();
            }})()""")
            price = browser.wait_for("document.getElementById('price')?.textContent")
            rating = browser.js("document.getElementById('rating')?.textContent")
            hidden = browser.js("[...document.querySelectorAll('#model optgroup')].filter(g => !g.hidden).length")
            assert re.fullmatch(r"[\d,]+ EUR", price) and int(price.removesuffix(" EUR").replace(",", "")) > 0
            assert rating in ("great", "good", "fair", "high", "overpriced")
            assert browser.js("location.search").startswith("?make=")
            browser.open(f"{url}/deals?min_rating=good")
            assert int(browser.wait_for("document.querySelectorAll('#deals tr').length")) > 1
            browser.open(f"{url}/market")
            assert browser.wait_for("document.querySelectorAll('svg.chart').length") >= 2
        finally:
            browser.close()
    assert hidden == 1
