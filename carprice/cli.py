"""The ``carprice`` command: run the whole path, serve the marketplace, open the Dagster UI."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from carprice.config import PROJECT_DIR, load_settings
from carprice.market.faults import FAULTS, parse_faults

# `carprice run` and `readmit` exit with this when the batch ends in quarantine (not a crash).
QUARANTINED_EXIT = 3


def _settings(args: argparse.Namespace):
    settings = load_settings()
    overrides = {k: v for k, v in {
        "market_listings": args.listings, "market_day": args.day, "market_seed": args.seed,
        "market_faults": parse_faults(args.faults) if getattr(args, "faults", None) else None,
        "data_dir": Path(args.data_dir).resolve() if args.data_dir else None,
    }.items() if v is not None}
    return dataclasses.replace(settings, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from carprice.runner import run_end_to_end, summary_json

    settings = _settings(args)
    if args.days > 1:
        return _run_days(settings, args)
    summary = run_end_to_end(settings, source=args.source)
    print(summary_json(summary) if args.json else summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def _run_days(settings, args: argparse.Namespace) -> int:
    """Crawl and process ``--days`` consecutive simulated days, one line per day."""
    from carprice.runner import run_end_to_end

    quarantined = 0
    for offset in range(args.days):
        day_settings = dataclasses.replace(settings, market_day=settings.market_day + offset)
        summary = run_end_to_end(day_settings, source=args.source, progress=lambda _: None)
        quarantined += not summary.admitted
        checks = "all checks passed" if summary.admitted else "; ".join(
            f"{k}: {v}" for k, v in summary.failed_checks.items())
        print(f"day {day_settings.market_day:>4}  {summary.batch_id}  {summary.status:<11} listings={summary.scraped}"
              f"  model={summary.model_version}  {checks}", flush=True)
    print(f"{args.days} days, {quarantined} batches quarantined")
    return 0 if not quarantined else QUARANTINED_EXIT


def cmd_batches_list(args: argparse.Namespace) -> int:
    from carprice.validation.admission import batch_statuses
    from carprice.warehouse import Warehouse

    settings = _settings(args)
    rows = batch_statuses(Warehouse(settings.warehouse_path), args.status)
    if rows.empty:
        print("no batches" + (f" with status {args.status}" if args.status else ""))
        return 0
    for row in rows.itertuples():
        print(f"{row.batch_id}  {row.status:<11} {row.decided_at:%Y-%m-%d %H:%M}  listings={row.listings}"
              f"  by={row.decided_by}\n    {row.reason}")
    return 0


def cmd_batches_readmit(args: argparse.Namespace) -> int:
    from carprice.runner import process_batch
    from carprice.validation.admission import readmit
    from carprice.warehouse import Warehouse

    settings = _settings(args)
    readmit(Warehouse(settings.warehouse_path), args.batch_id, args.by, args.note)
    print(f"recorded: {args.by} re-admits {args.batch_id}; processing it")
    summary = process_batch(settings, args.batch_id)
    print(summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def cmd_models_list(args: argparse.Namespace) -> int:
    from carprice.registry import models
    from carprice.warehouse import Warehouse

    rows = models(Warehouse(_settings(args).warehouse_path))
    if rows.empty:
        print("no models yet")
    for row in rows.itertuples():
        print(f"{row.version}  {row.status:<10} batches={row.batches} n_train={row.n_train} "
              f"MAE={row.evaluation_mae_eur} code={row.code_version}\n    {row.status_reason}")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from carprice.registry import champion, rollback
    from carprice.runner import revalue
    from carprice.warehouse import Warehouse

    settings = _settings(args)
    wh = Warehouse(settings.warehouse_path)
    previous = champion(wh).version
    rollback(wh, args.version, args.reason)
    valued = revalue(settings)
    print(f"{args.version} is champion again (was {previous}); {valued} listings re-valued with it")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from carprice.file_import import import_file, parse_column_map
    from carprice.landing import read_batch
    from carprice.runner import process_batch

    settings = _settings(args)
    folder = import_file(Path(args.file), settings.landing_dir, args.source, parse_column_map(args.map or []))
    batch = read_batch(folder)
    print(f"landed {batch.batch_id}: {batch.manifest['counts']}; processing it")
    summary = process_batch(settings, batch.batch_id)
    print(summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def cmd_market(args: argparse.Namespace) -> int:
    from carprice.market.server import main as serve

    settings = _settings(args)
    serve(["--seed", str(settings.market_seed), "--day", str(settings.market_day),
           "--listings", str(settings.market_listings), "--port", str(args.port),
           "--faults", ",".join(sorted(settings.market_faults))])
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from carprice.runner import prepare_dagster_home

    settings = _settings(args)
    home = prepare_dagster_home(settings)
    # The webserver loads the definitions in its own processes: hand the settings over.
    os.environ.update({"CARPRICE_DATA_DIR": str(settings.data_dir), "CARPRICE_MARKET_SEED": str(settings.market_seed),
                       "CARPRICE_MARKET_DAY": str(settings.market_day),
                       "CARPRICE_MARKET_LISTINGS": str(settings.market_listings),
                       "CARPRICE_MARKET_FAULTS": ",".join(sorted(settings.market_faults))})
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
        p.add_argument("--faults", help=f"comma-separated faults to inject into the marketplace: {', '.join(sorted(FAULTS))}")
        p.add_argument("--data-dir", help="where the warehouse, landing zone and models live")

    run = sub.add_parser("run", help="crawl, ingest, clean, train and value once, then print a summary")
    common(run)
    run.add_argument("--source", default="automarkt")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--days", type=int, default=1, help="run this many consecutive simulated days")
    run.set_defaults(func=cmd_run)

    market = sub.add_parser("market", help="serve the simulated marketplace on 127.0.0.1")
    common(market)
    market.add_argument("--port", type=int, default=8765)
    market.set_defaults(func=cmd_market)

    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on this project's instance")
    common(ui)
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    batches = sub.add_parser("batches", help="landed batches: list them with their validation status, re-admit")
    batches_sub = batches.add_subparsers(dest="batches_command", required=True)
    listing = batches_sub.add_parser("list", help="batches with status and reason, newest first")
    common(listing)
    listing.add_argument("--status", choices=["accepted", "quarantined", "readmitted"])
    listing.set_defaults(func=cmd_batches_list)
    readmit_p = batches_sub.add_parser("readmit", help="let a quarantined batch through after review")
    common(readmit_p)
    readmit_p.add_argument("batch_id")
    readmit_p.add_argument("--by", required=True, help="who reviewed the batch")
    readmit_p.add_argument("--note", required=True, help="why the batch is fine")
    readmit_p.set_defaults(func=cmd_batches_readmit)

    imp = sub.add_parser("import", help="land a CSV/Parquet/JSON-lines file as a batch and process it")
    common(imp)
    imp.add_argument("file")
    imp.add_argument("--source", required=True, help="the batch's source name, e.g. dealer_export")
    imp.add_argument("--map", nargs="*", metavar="COLUMN=FIELD",
                     help="map file columns to listing fields (common names map by default)")
    imp.set_defaults(func=cmd_import)

    models_p = sub.add_parser("models", help="the model registry: list versions, roll back")
    models_sub = models_p.add_subparsers(dest="models_command", required=True)
    mlist = models_sub.add_parser("list", help="every model version with status, reason and metrics")
    common(mlist)
    mlist.set_defaults(func=cmd_models_list)
    rollback_p = models_sub.add_parser("rollback", help="make an earlier champion serve again")
    common(rollback_p)
    rollback_p.add_argument("version")
    rollback_p.add_argument("--reason", required=True, help="why (recorded in the registry)")
    rollback_p.set_defaults(func=cmd_models_rollback)

    args = parser.parse_args(argv)
    from carprice.landing import BatchError
    from carprice.file_import import FileImportError
    from carprice.registry import RegistryError
    from carprice.runner import PipelineError
    from carprice.scraping import CrawlError
    from carprice.validation.admission import AdmissionError

    try:
        return args.func(args)
    except (ValueError, CrawlError, BatchError, AdmissionError, RegistryError, FileImportError, PipelineError) as exc:
        print(f"carprice: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
