"""The ``carprice`` command: run the whole path, serve the marketplace, open the Dagster UI."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from carprice.config import PROJECT_DIR, load_settings


def _settings(args: argparse.Namespace):
    settings = load_settings()
    overrides = {k: v for k, v in {
        "market_listings": args.listings, "market_day": args.day, "market_seed": args.seed,
        "data_dir": Path(args.data_dir).resolve() if args.data_dir else None,
    }.items() if v is not None}
    return dataclasses.replace(settings, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from carprice.runner import run_end_to_end, summary_json

    summary = run_end_to_end(_settings(args), source=args.source)
    print(summary_json(summary) if args.json else summary.render())
    return 0


def cmd_market(args: argparse.Namespace) -> int:
    from carprice.market.server import main as serve

    settings = _settings(args)
    serve(["--seed", str(settings.market_seed), "--day", str(settings.market_day),
           "--listings", str(settings.market_listings), "--port", str(args.port)])
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from carprice.runner import prepare_dagster_home

    settings = _settings(args)
    home = prepare_dagster_home(settings)
    # The webserver loads the definitions in its own processes: hand the settings over.
    os.environ.update({"CARPRICE_DATA_DIR": str(settings.data_dir), "CARPRICE_MARKET_SEED": str(settings.market_seed),
                       "CARPRICE_MARKET_DAY": str(settings.market_day),
                       "CARPRICE_MARKET_LISTINGS": str(settings.market_listings)})
    print(f"Dagster home: {home}; UI on http://127.0.0.1:{args.port}", flush=True)
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(PROJECT_DIR)
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(PROJECT_DIR / "workspace.yaml"),
                            "-h", "127.0.0.1", "-p", str(args.port)])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carprice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--listings", type=int, help="listings on sale in the simulated marketplace")
        p.add_argument("--day", type=int, help="simulated market day")
        p.add_argument("--seed", type=int, help="simulated market seed")
        p.add_argument("--data-dir", help="where the warehouse, landing zone and models live")

    run = sub.add_parser("run", help="crawl, ingest, clean, train and value once, then print a summary")
    common(run)
    run.add_argument("--source", default="automarkt")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    market = sub.add_parser("market", help="serve the simulated marketplace on 127.0.0.1")
    common(market)
    market.add_argument("--port", type=int, default=8765)
    market.set_defaults(func=cmd_market)

    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on this project's instance")
    common(ui)
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    args = parser.parse_args(argv)
    from carprice.landing import BatchError
    from carprice.scraping import CrawlError

    try:
        return args.func(args)
    except (ValueError, CrawlError, BatchError) as exc:
        print(f"carprice: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
