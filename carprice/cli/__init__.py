"""The ``carprice`` command: run the whole path, serve the marketplace, open the Dagster UI, serve the price API."""

from __future__ import annotations

import argparse
import signal
import sys

from carprice.cli.commands import (
    cmd_batches_list,
    cmd_batches_readmit,
    cmd_batches_retry,
    cmd_crawl,
    cmd_import,
    cmd_market,
    cmd_models_list,
    cmd_models_rollback,
    cmd_run,
    cmd_serve,
    cmd_sources_add,
    cmd_sources_check,
    cmd_sources_list,
    cmd_sql,
    cmd_ui,
)
from carprice.config import SERVE_PORT, UI_PORT
from carprice.market.faults import FAULTS
from carprice.validation.store import STATUSES, UNFINISHED


def build_parser() -> argparse.ArgumentParser:
    """The ``carprice`` command line: one subcommand per ``cmd_*`` function."""
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

    ui = sub.add_parser("ui", help="start the Dagster UI (dg dev) on this project's instance")
    common(ui)
    ui.add_argument("--port", type=int, default=UI_PORT)
    ui.add_argument("--api-port", type=int, default=SERVE_PORT, help="where the price API (carprice serve) answers")
    ui.set_defaults(func=cmd_ui)

    serve = sub.add_parser("serve", help="serve the price API (valuations, deals) from the published snapshot")
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (loopback unless told)")
    serve.add_argument("--port", type=int, default=SERVE_PORT, help="0 picks a free port")
    serve.set_defaults(func=cmd_serve)

    sql = sub.add_parser("sql", help="query the published read-only snapshot of the warehouse (never blocks a run)")
    sql.add_argument("query", nargs="?", help="the SQL (read from stdin when left out), e.g. "
                                              "\"SELECT make, count(*) FROM clean_listings GROUP BY ALL\"")
    sql.add_argument("--data-dir", help="the installation whose snapshot to query")
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown of a longer result (default 40)")
    sql.add_argument("--csv", action="store_true", help="print every row as CSV instead of a table")
    sql.set_defaults(func=cmd_sql, listings=None, day=None, seed=None)

    batches = sub.add_parser("batches", help="landed batches: list them with their validation status, re-admit, "
                                             "retry")
    batches_sub = batches.add_subparsers(dest="batches_command", required=True)
    listing = batches_sub.add_parser("list", help="batches with status and reason, newest first")
    common(listing)
    listing.add_argument("--status", choices=(*STATUSES, UNFINISHED),
                         help=f"only batches with this status; {UNFINISHED}: landed but without a status yet")
    listing.set_defaults(func=cmd_batches_list)
    readmit_p = batches_sub.add_parser("readmit", help="let a quarantined batch through after review")
    common(readmit_p)
    readmit_p.add_argument("batch_id")
    readmit_p.add_argument("--by", required=True, help="who reviewed the batch")
    readmit_p.add_argument("--note", required=True, help="why the batch is fine")
    readmit_p.set_defaults(func=cmd_batches_readmit)
    retry_p = batches_sub.add_parser("retry", help="process again a landed batch whose run ended without a status")
    common(retry_p)
    retry_p.add_argument("batch_id")
    retry_p.set_defaults(func=cmd_batches_retry)

    imp = sub.add_parser("import", help="land a CSV/Parquet/JSON-lines file as a batch and process it")
    common(imp)
    imp.add_argument("file")
    imp.add_argument("--source", required=True, help="the batch's source name, e.g. dealer_export")
    imp.add_argument("--map", nargs="+", action="extend", metavar="COLUMN=FIELD",
                     help="map file columns to listing fields, e.g. KM=mileage (common names map by default); a "
                          "template joins columns: {Mfg_Year}-{Mfg_Month}=first_registration")
    imp.add_argument("--set", nargs="+", action="extend", metavar="FIELD=VALUE",
                     help="one value for every row that does not state the field, e.g. make=Toyota (repeatable)")
    imp.add_argument("--currency", help="currency of prices that name none, e.g. EUR")
    imp.add_argument("--mileage-unit", metavar="{km,mi}", help="unit of mileages that name none")
    imp.add_argument("--power-unit", metavar="{kw,hp,ps}", help="unit of engine powers that name none")
    imp.add_argument("--check", action="store_true",
                     help="a dry run: show the mapping, the rows that would be accepted and rejected and the first "
                          "rejects; write nothing")
    imp.set_defaults(func=cmd_import)

    crawl = sub.add_parser("crawl", help="crawl one source now, then process its batch as a scheduled crawl's")
    common(crawl)
    crawl.add_argument("--source", required=True, help="a source of the installation's sources.toml")
    crawl.set_defaults(func=cmd_crawl)

    sources_p = sub.add_parser("sources", help="the sites this installation crawls (sources.toml in the data folder)")
    sources_sub = sources_p.add_subparsers(dest="sources_command", required=True)
    slist = sources_sub.add_parser("list", help="every source with its schedule, URLs and defaults")
    slist.add_argument("--data-dir", help="the installation")
    slist.set_defaults(func=cmd_sources_list, listings=None, day=None, seed=None)
    sadd = sources_sub.add_parser("add", help="add a source to sources.toml (checked before the file changes)")
    sadd.add_argument("name", help="a letter, then letters, digits and '_': it names the source's batches and "
                                   "its crawl schedule")
    sadd.add_argument("--start-url", action="append", help="a result page to walk (repeatable)")
    sadd.add_argument("--sitemap-url", action="append", help="a sitemap.xml or robots.txt listing the listing "
                                                              "pages (repeatable)")
    sadd.add_argument("--sitemap-pattern", help="a regex a sitemap's page must match to be read as a listing, "
                                                 "e.g. /used-cars/ (other pages are skipped)")
    sadd.add_argument("--link-css", help="listing links on a result page without ItemList data")
    sadd.add_argument("--next-css", help="the next results page on a site without rel=next")
    sadd.add_argument("--allowed-domain", action="append", help="a host the crawl may visit (repeatable; default: "
                                                                 "those of the URLs)")
    sadd.add_argument("--concurrency", type=int, help="requests in flight to the site at once (default 4)")
    sadd.add_argument("--delay", type=float, help="seconds between requests (default 0.5; AutoThrottle adapts it)")
    sadd.add_argument("--no-autothrottle", action="store_true", help="keep the delay fixed")
    sadd.add_argument("--user-agent", help="how the crawler introduces itself, with a contact URL or e-mail")
    sadd.add_argument("--schedule", help='cron (UTC) of its crawl schedule, e.g. "0 5 * * *" (default: on demand)')
    sadd.add_argument("--currency", help="ISO code of prices the pages give no currency for, e.g. GBP")
    sadd.add_argument("--distance-unit", choices=("km", "mi"), help="unit of odometers the pages give none for")
    sadd.add_argument("--disabled", action="store_true", help="add it without crawling it yet")
    sadd.add_argument("--data-dir", help="the installation")
    sadd.set_defaults(func=cmd_sources_add, listings=None, day=None, seed=None)
    scheck = sources_sub.add_parser("check", help="crawl a few pages of a source (landing nothing) and show what "
                                                  "the spider reads: listings, fields present, rejects")
    common(scheck)
    scheck.add_argument("name")
    scheck.add_argument("--pages", type=int, default=20, help="pages to fetch at most (default 20)")
    scheck.set_defaults(func=cmd_sources_check)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``carprice`` command; errors the user can act on are one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    # SIGTERM stops a command as Ctrl-C does, so that it stops its children on the way out. SIGINT is set too: a
    # shell that starts a command in the background makes it ignore SIGINT, and Dagster gives SIGTERM whatever
    # SIGINT does, so such a command would ignore both.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    import duckdb

    from carprice.analysts import SnapshotQueryError
    from carprice.ingest.file_import import FileImportError
    from carprice.ingest.landing import BatchError
    from carprice.runs.instance import PoolBusyError
    from carprice.runs.launcher import PipelineError
    from carprice.scraping.crawl import CrawlError
    from carprice.training.registry import RegistryError
    from carprice.validation.admission import AdmissionError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("carprice: interrupted", file=sys.stderr)
        return 130
    except (ValueError, CrawlError, BatchError, AdmissionError, RegistryError, FileImportError, PipelineError,
            PoolBusyError, SnapshotQueryError) as exc:
        print(f"carprice: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        print(f"carprice: error: the warehouse stayed open in another process (a run of `carprice ui` on the "
              f"same data folder, or an analyst's connection to the live file?); try again when it has finished: "
              f"{exc}", file=sys.stderr)
        return 2
