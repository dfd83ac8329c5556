"""The ``carprice`` command: run the whole path, serve the marketplace, open the Dagster UI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from carprice.config import PROJECT_DIR, load_settings
from carprice.market.faults import FAULTS, parse_fault_schedule
from carprice.market.shifts import MarketShift, format_shifts, parse_shifts

# `carprice run` and `readmit` exit with this when the batch ends in quarantine (not a crash).
QUARANTINED_EXIT = 3


def _settings(args: argparse.Namespace):
    settings = load_settings()
    overrides = {k: v for k, v in {
        "market_listings": args.listings, "market_day": args.day, "market_seed": args.seed,
        "market_faults": parse_fault_schedule(args.faults) if getattr(args, "faults", None) else None,
        "market_shifts": format_shifts(parse_shifts(args.shifts)) if getattr(args, "shifts", None) else None,
        "data_dir": Path(args.data_dir).resolve() if args.data_dir else None,
    }.items() if v is not None}
    if args.data_dir and "DAGSTER_HOME" not in os.environ:
        # Another data folder is another installation, with its own Dagster instance.
        overrides["dagster_home"] = Path(args.data_dir).resolve() / "dagster"
    return dataclasses.replace(settings, **overrides)


def demo_episodes(settings, days: int):
    """The demo's market: SUV prices jump 40% three tenths in, and one batch is broken six tenths in."""
    if days < 6:
        raise ValueError(f"--demo needs at least 6 days (a market shift, its detection and a broken batch), got {days}")
    first = settings.market_day - days + 1
    shift = MarketShift("suv", 1.4, start_day=first + max(2, days * 3 // 10), ramp_days=0)
    broken = f"prices_x100@{first + days * 6 // 10}"
    shifts = parse_shifts(settings.market_shifts) + (shift,)
    return dataclasses.replace(settings, market_shifts=format_shifts(shifts),
                               market_faults=settings.market_faults | {broken})


def cmd_run(args: argparse.Namespace) -> int:
    from carprice.runner import run_days

    settings = _settings(args)
    if args.demo:
        settings = demo_episodes(settings, args.days)
        print(f"demo: market shift {settings.market_shifts}; faults {', '.join(sorted(settings.market_faults))}",
              flush=True)
    # With --json the summary owns stdout; progress goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    reports = run_days(settings, args.days, progress=lambda line: print(line, file=out, flush=True))
    if args.days == 1:
        print(reports[0].to_json() if args.json else reports[0].render())
        return 0 if reports[0].admitted else QUARANTINED_EXIT
    if args.json:
        print(json.dumps([json.loads(r.to_json()) for r in reports], indent=2))
    else:
        print(render_days(reports, settings))
    return 0


def render_days(reports, settings) -> str:
    """What happened each day, then the totals and where to look."""
    from carprice.warehouse import Warehouse

    wh = Warehouse(settings.warehouse_path)
    alerts = wh.query("SELECT kind, count(*) AS n FROM alerts GROUP BY kind ORDER BY kind")
    requests = wh.query("SELECT kind, count(*) AS n FROM retraining_requests GROUP BY kind ORDER BY kind")
    quarantined = [r for r in reports if r.batch_id and not r.admitted]
    trained = [r for r in reports if r.challenger]
    lines = ["", f"carprice: {len(reports)} simulated days", *[f"  {r.line()}" for r in reports], "",
             f"  batches          {sum(r.admitted for r in reports)} accepted, {len(quarantined)} quarantined"
             + (f" ({', '.join(r.batch_id for r in quarantined)})" if quarantined else ""),
             f"  trainings        {len(trained)}, promoted {sum(r.promoted for r in trained)}: "
             + "; ".join(f"day {r.day} {r.trigger}{' (promoted)' if r.promoted else ''}" for r in trained),
             "  retrain requests " + (", ".join(f"{r.kind} {r.n}" for r in requests.itertuples()) or "none"),
             "  alerts           " + (", ".join(f"{r.kind} {r.n}" for r in alerts.itertuples()) or "none"),
             f"  serving model    {reports[-1].model_version}",
             f"  reports          {settings.reports_dir} (served by `carprice ui` at {settings.reports_url})",
             f"  analysts query   duckdb -readonly {settings.snapshot_path}",
             f"  dagster home     {settings.dagster_home}",
             "  open the UI      .venv/bin/carprice ui   (then http://127.0.0.1:3000)"]
    return "\n".join(lines)


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
              f"MAE={row.evaluation_mae_eur} code={row.code_version}\n    {row.status_reason}"
              + (f"\n    trained because: {row.trained_because}" if isinstance(row.trained_because, str) else ""))
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
    from carprice.market.faults import faults_on_day
    from carprice.market.server import main as serve

    settings = _settings(args)
    serve(["--seed", str(settings.market_seed), "--day", str(settings.market_day),
           "--listings", str(settings.market_listings), "--port", str(args.port),
           "--faults", ",".join(sorted(faults_on_day(settings.market_faults, settings.market_day))),
           "--shifts", settings.market_shifts])
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from carprice.runner import prepare_dagster_home

    settings = dataclasses.replace(_settings(args), reports_url=f"http://127.0.0.1:{args.port + 1}/")
    home = prepare_dagster_home(settings)
    # The webserver and daemon load the definitions in their own processes: hand the settings over.
    os.environ.update({"CARPRICE_DATA_DIR": str(settings.data_dir), "CARPRICE_MARKET_SEED": str(settings.market_seed),
                       "CARPRICE_MARKET_DAY": str(settings.market_day),
                       "CARPRICE_MARKET_LISTINGS": str(settings.market_listings),
                       "CARPRICE_MARKET_FAULTS": ",".join(sorted(settings.market_faults)),
                       "CARPRICE_MARKET_SHIFTS": settings.market_shifts,
                       "CARPRICE_ALERT_HOOK": settings.alert_hook,
                       "CARPRICE_REPORTS_URL": settings.reports_url})
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    print(f"Dagster home: {home}; UI on http://127.0.0.1:{args.port}; monitoring reports on {settings.reports_url}",
          flush=True)
    # The Evidently reports are HTML files: a plain file server makes the links in the asset metadata work.
    reports = subprocess.Popen([sys.executable, "-m", "http.server", str(args.port + 1), "--bind", "127.0.0.1",
                                "--directory", str(settings.reports_dir)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if reports.poll() is not None:
        print(f"carprice: warning: the report server could not start on port {args.port + 1} (in use?); report "
              "links in the UI will not open", file=sys.stderr)
    dagster = Path(sys.executable).with_name("dagster")
    try:
        return subprocess.call([str(dagster), "dev", "-w", str(PROJECT_DIR / "workspace.yaml"),
                                "-h", "127.0.0.1", "-p", str(args.port)], cwd=PROJECT_DIR)
    except KeyboardInterrupt:
        return 0
    finally:
        reports.terminate()
        reports.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carprice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--listings", type=int, help="listings on sale in the simulated marketplace")
        p.add_argument("--day", type=int, help="simulated market day")
        p.add_argument("--seed", type=int, help="simulated market seed")
        p.add_argument("--faults", help="comma-separated faults to inject into the marketplace (NAME@DAY: on that "
                                        f"market day only): {', '.join(sorted(FAULTS))}")
        p.add_argument("--shifts", help="market shift episodes, e.g. suv+30%%@40 (SEGMENT+PCT%%@DAY[~RAMP_DAYS])")
        p.add_argument("--data-dir", help="where the warehouse, landing zone and models live")

    run = sub.add_parser("run", help="simulate market days through the schedule and sensors, then print a summary")
    common(run)
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--days", type=int, default=1,
                     help="simulate this many consecutive market days, ending on --day (default today)")
    run.add_argument("--demo", action="store_true",
                     help="with --days N >= 6: SUV prices jump 40%% three tenths in, one broken batch later")
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

    import duckdb

    try:
        return args.func(args)
    except (ValueError, CrawlError, BatchError, AdmissionError, RegistryError, FileImportError, PipelineError) as exc:
        print(f"carprice: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        print(f"carprice: error: the warehouse is open in another process (a run of `carprice ui` on the same "
              f"data folder?); try again when it has finished: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
