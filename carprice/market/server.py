"""Serve the simulated marketplace over HTTP on the loopback interface.

Pages are rendered on request, so start-up costs nothing whatever the market size.
``running_marketplace`` starts the site in a child process that goes down with its parent and yields its URL;
``--faults`` (or ``faults=``) makes it serve the breakages of ``carprice.market.faults``;
``--shifts`` (or ``shifts=``) changes what a segment of cars is worth (``carprice.market.shifts``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from carprice.config import MARKET_PORT
from carprice.market.faults import parse_faults, validate_faults
from carprice.market.generator import Market, MarketConfig
from carprice.market.pages import ROBOTS_TXT, detail_page, home_page, index_page
from carprice.market.shifts import MarketShift, format_shifts, parse_shifts, validate_shifts
from carprice.processes import start_child, stop_child

_DETAIL = re.compile(r"^/cars/(\d+)(?:-[^/]*)?/?$")
LOOPBACK = "127.0.0.1"


class MarketplaceHandler(BaseHTTPRequestHandler):
    """Routes requests to the page renderers of one market on one day."""

    protocol_version = "HTTP/1.1"
    server: MarketplaceServer

    def do_GET(self) -> None:
        status, body, ctype = self._route()
        # Detail pages come as bytes: a broken page's bytes need not be UTF-8 whatever the header says.
        payload = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self) -> tuple[int, str | bytes, str]:
        market, day = self.server.market, self.server.day
        url = urlsplit(self.path)
        html_type = "text/html; charset=utf-8"
        if url.path == "/robots.txt":
            return 200, ROBOTS_TXT, "text/plain; charset=utf-8"
        if url.path == "/":
            return 200, home_page(market, day), html_type
        if url.path.rstrip("/") == "/cars":
            try:
                page = int(parse_qs(url.query).get("page", ["1"])[0])
            except ValueError:
                return 400, "bad page number", "text/plain"
            body = index_page(market, day, page)
            return (200, body, html_type) if body else (404, "no such page", "text/plain")
        match = _DETAIL.match(url.path)
        if match:
            listing_id = int(match.group(1))
            if market.is_active(listing_id, day):
                return 200, detail_page(market, market.listing(listing_id), day, self.server.public_url), html_type
            return 404, "this car has been sold", "text/plain"
        return 404, "not found", "text/plain"

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class MarketplaceServer(ThreadingHTTPServer):
    """An HTTP server bound to one market and one simulated day."""

    daemon_threads = True

    def __init__(self, market: Market, day: int, port: int = 0, verbose: bool = False, public_url: str | None = None):
        super().__init__((LOOPBACK, port), MarketplaceHandler)
        self.market, self.day, self.verbose = market, day, verbose
        self.public_url = public_url or self.url  # where its pages say they live (their canonical links)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"


@contextlib.contextmanager
def running_marketplace(seed: int, day: int, listings: int, faults: frozenset[str] = frozenset(),
                        timeout: float = 30.0, shifts: tuple[MarketShift, ...] = (), public_url: str | None = None,
                        port: int = 0) -> Iterator[str]:
    """Run the marketplace (with ``faults`` and ``shifts``) in a child process for the block; yields its base URL.
    Its pages name their canonical URL at ``public_url`` (by default its own address)."""
    cmd = [sys.executable, "-m", "carprice.market.server", "--seed", str(seed), "--day", str(day),
           "--listings", str(listings), "--port", str(port)]
    if public_url:
        cmd += ["--public-url", public_url]
    faults = validate_faults(faults)
    if faults:
        cmd += ["--faults", ",".join(sorted(faults))]
    shifts = validate_shifts(shifts)
    if shifts:
        cmd += ["--shifts", format_shifts(shifts)]
    proc = start_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("serving "):
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"the simulated marketplace did not start: {line.strip()} {err.strip()}")
        yield line.split()[1]
    finally:
        stop_child(proc, grace_s=timeout)


def record_market(path: Path, market: dict) -> None:
    """Note the market a crawl saw (``running_marketplace`` arguments) in ``path``, unless a later day is noted:
    the links in the warehouse point at that market, which ``served_market_args`` serves again."""
    previous = recorded_market(path)
    if previous is not None and previous["day"] > market["day"]:
        return
    text = json.dumps({**market, "faults": sorted(market["faults"]), "shifts": format_shifts(market["shifts"])})
    # A temporary file of its own: two crawls may finish at once (the newest day still wins the next time).
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as tmp:
        tmp.write(text)
    Path(tmp.name).replace(path)


def recorded_market(path: Path) -> dict | None:
    """The market ``record_market`` noted (faults and shifts as text), or None when there is none (or it is
    unreadable: it is only a note)."""
    try:
        market = json.loads(path.read_text(encoding="utf-8"))
        return {"seed": int(market["seed"]), "day": int(market["day"]), "listings": int(market["listings"]),
                "faults": ",".join(market["faults"]), "shifts": str(market["shifts"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def served_market_args(path: Path, port: int = MARKET_PORT) -> list[str] | None:
    """The command line arguments that serve the recorded market again on ``port``, or None without one."""
    market = recorded_market(path)
    if market is None:
        return None
    return ["--seed", str(market["seed"]), "--day", str(market["day"]), "--listings", str(market["listings"]),
            "--faults", market["faults"], "--shifts", market["shifts"], "--port", str(port)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the simulated used-car marketplace on 127.0.0.1.")
    parser.add_argument("--seed", type=int, default=MarketConfig.seed)
    parser.add_argument("--day", type=int, default=0)
    parser.add_argument("--listings", type=int, default=3000, help="listings on sale on any day")
    parser.add_argument("--port", type=int, default=MARKET_PORT, help="0 picks a free port")
    parser.add_argument("--public-url", help="the address its pages give as their canonical URL (default: its own)")
    parser.add_argument("--faults", default="", help="comma-separated faults to inject, e.g. broken_pages,prices_x100")
    parser.add_argument("--shifts", default="", help="comma-separated market shifts SEGMENT(+|-)PCT%%@DAY[~RAMP], "
                        "e.g. suv+30%%@40,electric-15%%@60~3 (prices of cars listed from that day on)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
        shifts = parse_shifts(args.shifts)
    except ValueError as exc:
        parser.error(str(exc))
    market = Market(MarketConfig.for_active_listings(args.listings, seed=args.seed, faults=faults, shifts=shifts))
    server = MarketplaceServer(market, args.day, args.port, args.verbose, args.public_url)
    with_faults = f" faults={','.join(sorted(faults))}" if faults else ""
    with_shifts = f" shifts={format_shifts(shifts)}" if shifts else ""
    print(f"serving {server.url} day={args.day} seed={args.seed}{with_faults}{with_shifts}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
