"""The price API under load, beside bare LightGBM predictions of the same rows, measured in the same run.

    .venv/bin/python benchmarks/serving.py [--listings 3000] [--requests 3000] [--seconds 30] [--concurrency 8]

Builds an installation (simulated listings, a champion trained with the default recipe, its snapshot), starts the
real server (`python -m carprice.serving.server`) on 127.0.0.1 and prints:
- single-car valuations over HTTP (a bounded load generator: at most --requests, at most --seconds), with their
  effects (the default) and price only (`?effects=false`): throughput, p50/p99 latency and the server's CPU per
  valuation (which others' work on the machine barely moves), beside bare `Booster.predict` of one row (1 and 2
  threads) on the same rows;
- the batch endpoint (10,000 cars, no effects) per row, beside bare predict of the same 10,000 rows;
- hot reload under that load: failed requests while a new champion is promoted, and the time from its snapshot
  being published to the first answer by it.
Targets (issue 12): >= 1,000 valuations/s, p99 <= 20 ms, batch within 2x bare predict per row, 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from carprice.serving.server import running_api
from carprice.serving.valuation import CAR_FIELDS
from carprice.training.modeling import load_model
from carprice.training.registry import champion
from carprice_tests.serving.conftest import build_installation, train_and_promote

# The default recipe on one thread: the trees a real champion has (hundreds of rounds), trained without fighting
# the load generator for the second core.
RECIPE = {"num_threads": 1, "learning_rate": 0.05}


def described_cars(inst, n: int, seed: int = 1) -> list[dict]:
    """Current listings as an owner would describe them (with their asking price), sampled with replacement."""
    clean = inst.warehouse.query("SELECT * FROM clean_listings").sample(n, replace=True, random_state=seed)
    cars = clean[[c for c in CAR_FIELDS if c not in ("first_registration", "description")]].assign(
        asking_price=clean["market_price"])
    return [{k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in cars.to_dict("records")]


def server_cpu_s(data_dir: Path) -> float:
    """CPU seconds used so far by the price API serving ``data_dir`` (all its threads): a figure that others' work
    on the machine barely moves, unlike throughput."""
    pattern = f"carprice.serving.server --data-dir {data_dir}"
    pid = subprocess.check_output(["pgrep", "-f", pattern], text=True).split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def bare_predict(inst, rows: int) -> dict[str, float]:
    """Seconds per row of the champion's bare Booster.predict on its numeric feature matrix (the fastest way to call
    it: no DataFrame): one row per call (1 and 2 threads), one call for ``rows`` rows."""
    registered = champion(inst.warehouse)
    model = load_model(registered.artifact_path, registered.sha256)
    X = model.values(inst.features.sample(rows, replace=True, random_state=2).reset_index(drop=True))
    out = {}
    for threads in (1, 2):
        singles = [X[i:i + 1] for i in range(min(rows, 2000))]
        model.booster.predict(singles[0], num_threads=threads)
        times = []
        for row in singles:
            start = time.perf_counter()
            model.booster.predict(row, num_threads=threads)
            times.append(time.perf_counter() - start)
        out[f"single_{threads}t_p50"], out[f"single_{threads}t_p99"] = percentile(times, 50), percentile(times, 99)
        out[f"single_{threads}t_per_s"] = len(times) / sum(times)
    start = time.perf_counter()
    model.booster.predict(X, num_threads=1)
    out["batch_per_row"] = (time.perf_counter() - start) / rows
    return out


class Connection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams: the load generator shares the server's two
    cores, so it should cost far less per request than the server does (httpx costs about a millisecond)."""

    def __init__(self, url: str):
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, str]:
        """(status, X-Model-Version) of one POST; the body is read and dropped."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.writer = None
        return int(lines[0].split()[1]), headers.get("x-model-version", "")


async def load(url: str, cars: list[dict], max_requests: int, max_seconds: float, concurrency: int,
               log: list[tuple[float, float, int, str]], path: str = "/api/v1/valuations") -> float:
    """Send single-car valuations from ``concurrency`` connections until ``max_requests`` are answered or
    ``max_seconds`` pass; appends (time, latency, status, version) per request; returns the wall time."""
    bodies = [json.dumps(car).encode() for car in cars]
    sent = 0
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        nonlocal sent
        connection = Connection(url)
        while sent < max_requests and time.monotonic() < deadline:
            body = bodies[sent % len(bodies)]
            sent += 1
            start = time.perf_counter()
            try:
                status, version = await connection.post(path, body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status, version, connection = 0, repr(exc), Connection(url)
            log.append((time.monotonic(), time.perf_counter() - start, status, version))
        if connection.writer is not None:
            connection.writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


def single_cars(url: str, data_dir: Path, cars: list[dict], args: argparse.Namespace, path: str) -> dict:
    """Throughput, latencies, errors and CPU per request of single-car valuations at ``path``."""
    log: list[tuple[float, float, int, str]] = []
    cpu, served_cpu = time.process_time(), server_cpu_s(data_dir)
    wall = asyncio.run(load(url, cars, args.requests, args.seconds, args.concurrency, log, path))
    latencies = [t for _, t, status, _ in log if status == 200]
    return {"rate": len(latencies) / wall, "wall": wall, "requests": len(log), "latencies": latencies,
            "errors": sum(status != 200 for _, _, status, _ in log),
            "generator_cpu": (time.process_time() - cpu) / max(len(log), 1),
            "server_cpu": (server_cpu_s(data_dir) - served_cpu) / max(len(log), 1)}


def batch_per_row(url: str, cars: list[dict], repeats: int = 3) -> tuple[float, float]:
    """Seconds per row of POST /valuations:batch with ``cars`` (best of ``repeats``), and the body size in MB."""
    times = []
    body = json.dumps({"cars": cars}).encode()  # encoded once: the client's JSON encoding is not the server's time
    with httpx.Client(base_url=url, timeout=300) as client:
        for _ in range(repeats):
            start = time.perf_counter()
            answer = client.post("/api/v1/valuations:batch", content=body,
                                 headers={"Content-Type": "application/json"})
            times.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text[:500]
    return min(times) / len(cars), len(answer.content) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=3000, help="at most this many single-car requests a phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="at most this long a phase")
    # At 1,000 answers a second, n requests in flight wait n ms on average (Little's law): a p99 of 20 ms allows
    # about 8 to 10.
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        inst = build_installation(Path(tmp), args.listings)
        first = train_and_promote(inst, RECIPE)
        model = load_model(champion(inst.warehouse).artifact_path)
        print(f"installation: {args.listings} listings, champion {first} with "
              f"{model.booster.num_trees()} trees, built in {time.perf_counter() - started:.0f} s", flush=True)
        cars = described_cars(inst, 10_000)
        bare = bare_predict(inst, 10_000)

        with running_api(inst.settings) as url:
            httpx.post(f"{url}/api/v1/valuations", json=cars[0]).raise_for_status()
            asyncio.run(load(url, cars, 200, 10, args.concurrency, []))  # warm-up: connections, first requests
            phases = {}
            for name, path in (("with effects", "/api/v1/valuations"),
                               ("price only", "/api/v1/valuations?effects=false")):
                phases[name] = single_cars(url, inst.settings.data_dir, cars, args, path)
            per_row, megabytes = batch_per_row(url, cars)

            # Hot reload under load: a new champion is promoted and published while the load runs.
            reload_log: list[tuple[float, float, int, str]] = []
            published: dict[str, float] = {}

            def promote_soon() -> None:
                time.sleep(min(3.0, args.seconds / 4))
                published["version"] = train_and_promote(inst, {**RECIPE, "num_leaves": 7})
                published["at"] = time.monotonic()

            promoter = threading.Thread(target=promote_soon)
            promoter.start()
            asyncio.run(load(url, cars, 10**9, max(args.seconds, 15.0), args.concurrency, reload_log))
            promoter.join()
        new = [at for at, _, status, version in reload_log if status == 200 and version == published["version"]]
        reload_errors = sum(status != 200 for _, _, status, _ in reload_log)

    single = bare["single_1t_p50"]
    print(f"machine                {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (others' "
          "work included)")
    for name, phase in phases.items():
        latencies = phase["latencies"]
        print(f"single car, {name:12s}{phase['rate']:6.0f} valuations/s  p50 {percentile(latencies, 50) * 1e3:6.1f} ms"
              f"  p99 {percentile(latencies, 99) * 1e3:6.1f} ms  ({phase['requests']} requests, {phase['errors']} "
              f"errors, concurrency {args.concurrency}, {phase['wall']:.1f} s)   targets: >= 1,000/s, p99 <= 20 ms")
        cpu = phase["server_cpu"] + phase["generator_cpu"]
        print(f"  CPU per valuation    server {phase['server_cpu'] * 1e3:.2f} ms (all its threads), load generator "
              f"{phase['generator_cpu'] * 1e3:.2f} ms: 2 cores allow at most {2 / cpu:,.0f}/s")
    for threads in (1, 2):
        print(f"bare predict, 1 row    {bare[f'single_{threads}t_per_s']:8.0f} rows/s        p50 "
              f"{bare[f'single_{threads}t_p50'] * 1e3:6.2f} ms  p99 {bare[f'single_{threads}t_p99'] * 1e3:6.2f} ms"
              f"  (num_threads={threads})")
    lean = phases["price only"]
    print(f"ratio HTTP/bare        {statistics.median(lean['latencies']) / single:8.1f}x p50 latency, "
          f"{bare['single_1t_per_s'] / lean['rate']:.1f}x throughput (bare 1 thread / served price only)")
    print(f"batch of 10,000        {per_row * 1e6:8.1f} µs/row (response {megabytes:.1f} MB)   bare predict "
          f"{bare['batch_per_row'] * 1e6:.1f} µs/row   ratio {per_row / bare['batch_per_row']:.1f}x   "
          "(target <= 2x)")
    took = f"{new[0] - published['at']:.2f} s" if new else "never"
    print(f"hot reload under load  {reload_errors} errors in {len(reload_log)} requests; "
          f"snapshot published -> first answer by the new champion: {took}")


if __name__ == "__main__":
    main()
