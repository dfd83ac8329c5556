"""What ``carprice ui`` supervises: the Dagster UI and daemon (``dg dev``), the monitoring report server and the
price API."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from carprice.config import MARKET_PORT, MARKET_URL, PROJECT_DIR, SERVE_PORT, Settings
from carprice.market.server import served_market_args
from carprice.processes import start_child, stop_child
from carprice.runs.instance import prepare_dagster_home, prepare_sources


def start_report_server(folder: Path, port: int) -> subprocess.Popen:
    """Serve ``folder`` on 127.0.0.1:``port``; warns (and goes on) when the port is taken."""
    # The Evidently reports are HTML files: a plain file server makes the links in the asset metadata work.
    server = start_child([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if server.poll() is not None:
        print(f"carprice: warning: the report server could not start on port {port} (in use?); report "
              "links in the UI will not open", file=sys.stderr)
    return server


def start_price_api(settings: Settings, port: int) -> subprocess.Popen:
    """The price API (``carprice serve``) on 127.0.0.1:``port``; warns (and goes on) when it cannot start."""
    api = start_child([sys.executable, "-m", "carprice.serving.server", "--data-dir", str(settings.data_dir),
                       "--port", str(port)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    if api.poll() is not None:
        print(f"carprice: warning: the price API could not start on port {port} (in use? try --api-port)",
              file=sys.stderr)
    return api


def start_marketplace(settings: Settings, port: int = MARKET_PORT) -> subprocess.Popen | None:
    """The embedded marketplace as last crawled, on 127.0.0.1:``port`` (its public address, where the warehouse's
    links point), or None when this installation never crawled it; warns (and goes on) when it cannot start."""
    args = served_market_args(settings.layout.marketplace_path, port)
    if args is None:
        return None
    market = start_child([sys.executable, "-m", "carprice.market.server", *args], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    if market.poll() is not None:
        print(f"carprice: warning: the embedded marketplace could not start on port {port} (in use?); links to its "
              "listings will not open", file=sys.stderr)
        return None
    return market


def start_dagster_dev(port: int) -> subprocess.Popen:
    """``dg dev`` (webserver, daemon and code servers) in the project folder, the code location of its ``[tool.dg]``."""
    dg_cli = Path(sys.executable).with_name("dg")
    return start_child([str(dg_cli), "dev", "-h", "127.0.0.1", "-p", str(port)], cwd=PROJECT_DIR)


def serve_ui(settings: Settings, port: int, api_port: int = SERVE_PORT) -> int:
    """The Dagster UI on ``port``, the monitoring reports on ``port + 1`` and the price API on ``api_port``, for
    this installation, until Ctrl-C or SIGTERM, which stop them all with everything they started."""
    import dagster as dg

    home = prepare_dagster_home(settings)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        prepare_sources(settings, instance)
    # The webserver and daemon load the definitions in their own processes: hand the settings over.
    os.environ.update(settings.to_env())
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    print(f"Dagster home: {home}; UI on http://127.0.0.1:{port}; monitoring reports on {settings.reports_url}; "
          f"price API on http://127.0.0.1:{api_port}/docs", flush=True)
    with contextlib.ExitStack() as children:
        children.callback(stop_child, start_report_server(settings.reports_dir, port + 1))
        children.callback(stop_child, start_price_api(settings, api_port))
        market = start_marketplace(settings)
        if market is not None:
            children.callback(stop_child, market)
            print(f"the embedded marketplace as last crawled on {MARKET_URL}", flush=True)
        dev = start_dagster_dev(port)
        children.callback(stop_child, dev)
        try:
            return dev.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (carprice.cli.main makes both raise it)
            return 0
