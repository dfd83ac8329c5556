"""What each ``carprice`` subcommand does, given its parsed arguments; each returns the exit status."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from carprice.config import ENV_VARS, Settings, load_settings
from carprice.market.faults import parse_fault_schedule
from carprice.market.shifts import MarketShift, format_shifts, parse_shifts

# `carprice run` and `readmit` exit with this when the batch ends in quarantine (not a crash).
QUARANTINED_EXIT = 3
# ... and with this when a run failed for another reason (the error is in the summary), as for any error.
FAILED_EXIT = 2


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's options on top."""
    settings = load_settings()
    overrides = {k: v for k, v in {
        "market_listings": args.listings, "market_day": args.day, "market_seed": args.seed,
        "market_faults": parse_fault_schedule(args.faults) if getattr(args, "faults", None) else None,
        "market_shifts": format_shifts(parse_shifts(args.shifts)) if getattr(args, "shifts", None) else None,
        "data_dir": Path(args.data_dir).resolve() if args.data_dir else None,
    }.items() if v is not None}
    if args.data_dir and ENV_VARS["dagster_home"] not in os.environ:
        # Another data folder is another installation, with its own Dagster instance.
        overrides["dagster_home"] = Path(args.data_dir).resolve() / "dagster"
    return dataclasses.replace(settings, **overrides)


def demo_episodes(settings: Settings, days: int) -> Settings:
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
    from carprice.runs.clock import run_days
    from carprice.runs.reports import render_days

    settings = settings_from(args)
    if args.demo:
        settings = demo_episodes(settings, args.days)
        print(f"demo: market shift {settings.market_shifts}; faults {', '.join(sorted(settings.market_faults))}",
              flush=True)
    # With --json the summary owns stdout; progress goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    reports = run_days(settings, args.days, progress=lambda line: print(line, file=out, flush=True))
    # A run that failed (not a quarantine) is reported and the day goes on; the exit status still says so.
    failed = any(r.errors for r in reports)
    if args.days == 1:
        print(reports[0].to_json() if args.json else reports[0].render())
        day = reports[0]
        return FAILED_EXIT if failed else 0 if day.all_admitted else QUARANTINED_EXIT
    if args.json:
        print(json.dumps([json.loads(r.to_json()) for r in reports], indent=2))
    else:
        print(render_days(reports, settings))
    return FAILED_EXIT if failed else 0


def cmd_sql(args: argparse.Namespace) -> int:
    import shutil

    from carprice.analysts import query_snapshot

    if args.query is None and sys.stdin.isatty():
        raise ValueError('give the SQL as an argument (carprice sql "SELECT ...") or on stdin')
    sql = args.query if args.query is not None else sys.stdin.read()
    width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 160
    print(query_snapshot(settings_from(args).snapshot_path, sql, max_rows=args.max_rows, max_width=width,
                         csv=args.csv))
    return 0


def cmd_batches_list(args: argparse.Namespace) -> int:
    from carprice.validation.store import UNFINISHED, batch_statuses
    from carprice.warehouse import Warehouse

    settings = settings_from(args)
    shown = 0
    if args.status in (None, UNFINISHED):
        shown += _print_unfinished(settings)
    rows = batch_statuses(Warehouse(settings.warehouse_path), args.status) if args.status != UNFINISHED \
        and settings.warehouse_path.exists() else None
    for row in rows.itertuples() if rows is not None else ():
        print(f"{row.batch_id}  {row.status:<11} {row.decided_at:%Y-%m-%d %H:%M}  listings={row.listings}"
              f"  by={row.decided_by}\n    {row.reason}")
        shown += 1
    if not shown:
        print("no batches" + (f" with status {args.status}" if args.status else ""))
    return 0


def _print_unfinished(settings: Settings) -> int:
    """List the landed batches without a status, with their runs so far, and unreadable batch folders."""
    import dagster as dg

    from carprice.ingest.landing import scan_landing, unfinished
    from carprice.runs.instance import prepare_dagster_home
    from carprice.validation.store import UNFINISHED, decided_batch_ids
    from carprice.warehouse import Warehouse

    batches, broken = scan_landing(settings.landing_dir)
    todo = unfinished(batches, decided_batch_ids(Warehouse(settings.warehouse_path)))
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings))) if todo else None
    for batch in todo:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="batch_job",
                                                       tags={"dagster/partition": batch.batch_id}))
        tried = ", ".join(f"{r.run_id[:8]} {r.status.value.lower()}" for r in runs) or "never run"
        print(f"{batch.batch_id}  {UNFINISHED:<11} landed {str(batch.manifest.get('finished_at', '?'))[:16]}"
              f"  listings={batch.manifest.get('counts', {}).get('listings')}\n    runs: {tried}; "
              f"process it with: carprice batches retry {batch.batch_id}")
    for path, reason in broken.items():
        print(f"{path}  unreadable\n    {reason}")
    return len(todo) + len(broken)


def cmd_batches_retry(args: argparse.Namespace) -> int:
    from carprice.ingest.landing import find_batch
    from carprice.runs.clock import process_batch
    from carprice.validation.store import QUARANTINED, status_of
    from carprice.warehouse import Warehouse

    settings = settings_from(args)
    batch = find_batch(settings.landing_dir, args.batch_id)
    status = status_of(Warehouse(settings.warehouse_path), batch.batch_id) if settings.warehouse_path.exists() \
        else None
    if status is not None:
        hint = "; to let it through after review: carprice batches readmit" if status == QUARANTINED else ""
        raise ValueError(f"batch {batch.batch_id} is already {status}: nothing to retry{hint}")
    print(f"processing {batch.batch_id} again")
    summary = process_batch(settings, batch.batch_id)
    print(summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def cmd_batches_readmit(args: argparse.Namespace) -> int:
    from carprice.runs.clock import process_batch
    from carprice.validation.admission import readmit
    from carprice.warehouse import Warehouse

    settings = settings_from(args)
    readmit(Warehouse(settings.warehouse_path), args.batch_id, args.by, args.note)
    print(f"recorded: {args.by} re-admits {args.batch_id}; processing it")
    summary = process_batch(settings, args.batch_id)
    print(summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def cmd_models_list(args: argparse.Namespace) -> int:
    import pandas as pd

    from carprice.training.registry import recorded_split
    from carprice.training.store import models
    from carprice.warehouse import Warehouse

    rows = models(Warehouse(settings_from(args).warehouse_path))
    if rows.empty:
        print("no models yet")
    for row in rows.itertuples():
        split = recorded_split(row.split, None if pd.isna(row.train_cutoff) else pd.Timestamp(row.train_cutoff),
                               row.n_train, row.n_holdout)
        print(f"{row.version}  {row.status:<10} batches={row.batches} n_train={row.n_train} "
              f"MAE={row.evaluation_mae} code={row.code_version}\n    {row.status_reason}"
              + (f"\n    trained because: {row.trained_because}" if isinstance(row.trained_because, str) else "")
              + f"\n    split: {split.kind}: {split.summary()}")
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from carprice.runs.launcher import revalue
    from carprice.training.registry import champion, rollback
    from carprice.warehouse import Warehouse

    settings = settings_from(args)
    wh = Warehouse(settings.warehouse_path)
    previous = champion(wh).version
    rollback(wh, args.version, args.reason)
    valued = revalue(settings)
    print(f"{args.version} is champion again (was {previous}); {valued} listings re-valued with it")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from carprice.ingest.file_import import (
        check_file,
        import_constants,
        import_file,
        most_rejected,
        parse_column_map,
        rejects_headline,
    )
    from carprice.ingest.landing import read_batch
    from carprice.runs.clock import process_batch

    column_map = parse_column_map(args.map or [])
    constants = import_constants(args.set or [], args.currency, args.mileage_unit, args.power_unit)
    settings = settings_from(args)
    if args.check:
        print(check_file(Path(args.file), args.source, column_map, constants).render())
        return 0
    batch = read_batch(import_file(Path(args.file), settings.landing_dir, args.source, column_map, constants))
    counts, reasons = batch.manifest["counts"], batch.manifest["reject_reasons"]
    print(f"landed {batch.batch_id}: {counts['listings']:,} listings, {counts['rejects']:,} rejects")
    headline = rejects_headline(counts["rows"], reasons)
    if most_rejected(counts["rows"], reasons):
        # Said before the checks run: when most rows fail, the mapping is the likely cause, not the data.
        print(f"MOST ROWS REJECTED: {headline}\n  the rejects stay in the batch with their reasons; to see the "
              f"mapping and the first rejects, run the same command with --check")
    else:
        print(f"  {headline}")
    print("processing it", flush=True)
    summary = process_batch(settings, batch.batch_id)
    print(summary.render())
    return 0 if summary.admitted else QUARANTINED_EXIT


def cmd_market(args: argparse.Namespace) -> int:
    from carprice.market.faults import faults_on_day
    from carprice.market.server import main as serve

    settings = settings_from(args)
    serve(["--seed", str(settings.market_seed), "--day", str(settings.market_day),
           "--listings", str(settings.market_listings), "--port", str(args.port),
           "--faults", ",".join(sorted(faults_on_day(settings.market_faults, settings.market_day))),
           "--shifts", settings.market_shifts])
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from carprice.cli.servers import serve_ui

    settings = dataclasses.replace(settings_from(args), reports_url=f"http://127.0.0.1:{args.port + 1}/")
    return serve_ui(settings, args.port, args.api_port)


def cmd_serve(args: argparse.Namespace) -> int:
    from carprice.cli.servers import start_marketplace
    from carprice.config import MARKET_URL
    from carprice.processes import stop_child
    from carprice.serving.server import serve

    settings = settings_from(args)
    # The links of deals and comparables on the embedded marketplace open while the API runs.
    market = start_marketplace(settings)
    if market is not None:
        print(f"the embedded marketplace as last crawled on {MARKET_URL}", flush=True)
    try:
        serve(settings, args.host, args.port)
    finally:
        if market is not None:
            stop_child(market)
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    from carprice.runs.clock import crawl_now

    settings = settings_from(args)
    report = crawl_now(settings, args.source)
    print(report.render())
    return FAILED_EXIT if report.errors else 0 if report.all_admitted else QUARANTINED_EXIT


def cmd_sources_list(args: argparse.Namespace) -> int:
    from carprice.sources import load_sources

    path = settings_from(args).layout.sources_path
    sources = load_sources(path)
    print(f"{path}" + ("" if path.exists() else "  (no file yet: the default, written by the first `carprice run`, "
                                                 "`carprice crawl` or `carprice sources add`)"))
    for s in sources.values():
        where = ", ".join([*s.start_urls, *(f"sitemap {u}" for u in s.sitemap_urls)])
        schedule = s.schedule or "on demand"
        print(f"{s.name:<16} {'enabled' if s.enabled else 'DISABLED':<8} {schedule:<14} {where}\n"
              f"{'':<16} prices without currency: {s.currency or 'rejected'}; odometers without unit: "
              f"{s.distance_unit}; {s.concurrency} at once, {s.delay_s:g} s apart"
              f"{', robots.txt obeyed' if s.obey_robots else ', robots.txt IGNORED'}")
    return 0


def cmd_sources_add(args: argparse.Namespace) -> int:
    from carprice.config import DEFAULT_USER_AGENT
    from carprice.sources import Locator, add_source, source_from_table, source_table

    path = settings_from(args).layout.sources_path
    table = {"start_urls": args.start_url or [], "sitemap_urls": args.sitemap_url or [],
             "allowed_domains": args.allowed_domain or [], "sitemap_pattern": args.sitemap_pattern,
             "link_css": args.link_css, "next_css": args.next_css,
             "concurrency": args.concurrency, "delay_s": args.delay, "autothrottle": not args.no_autothrottle,
             "obey_robots": True, "user_agent": args.user_agent or DEFAULT_USER_AGENT, "schedule": args.schedule,
             "currency": args.currency, "distance_unit": args.distance_unit, "enabled": not args.disabled}
    table = {k: v for k, v in table.items() if v not in (None, [])}
    source = source_from_table(args.name, table, Locator("", path))
    add_source(path, source)
    print(f"added source {source.name} to {path}:")
    for key, value in source_table(source).items():
        print(f"  {key} = {json.dumps(value)}")
    print(f"see what the spider reads from it: carprice sources check {source.name}"
          + (f" --data-dir '{args.data_dir}'" if args.data_dir else ""))
    return 0


def cmd_sources_check(args: argparse.Namespace) -> int:
    import contextlib

    from carprice.defs.resources import build_resources
    from carprice.scraping.check import check_source
    from carprice.sources import load_sources

    settings = settings_from(args)
    sources = load_sources(settings.layout.sources_path)
    if args.name not in sources:
        raise ValueError(f"unknown source {args.name!r}: {settings.layout.sources_path} configures "
                         f"{', '.join(sorted(sources))}")
    source = sources[args.name]
    if args.pages < 1:
        raise ValueError(f"--pages must be at least 1, got {args.pages}")
    with contextlib.ExitStack() as stack:
        start_url = None
        if source.embedded:
            market = build_resources(settings)["scraper"].marketplace
            start_url = stack.enter_context(market.running(market.as_of()))
        print(f"crawling about {args.pages} pages of {source.name} (requests under way then finish; nothing is "
              "landed) ...", flush=True)
        check = check_source(source, pages=args.pages, start_url=start_url, timeout_s=settings.crawl_timeout_s)
    print(check.render())
    return 0 if check.listings else FAILED_EXIT
