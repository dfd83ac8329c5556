"""What `carprice ui` and `carprice serve` need to serve the embedded marketplace as last crawled."""

from __future__ import annotations

from carprice.market.server import record_market, served_market_args
from carprice.market.shifts import parse_shifts


def test_the_market_last_crawled_is_recorded_and_served_again(tmp_path):
    path = tmp_path / "marketplace.json"
    assert served_market_args(path) is None  # never crawled: nothing to serve
    market = {"seed": 7, "day": 12, "listings": 500, "faults": frozenset({"prices_x100"}),
              "shifts": parse_shifts("suv+40%@10")}
    record_market(path, market)
    record_market(path, {**market, "day": 11, "faults": frozenset()})  # a backfill of an older day: not the newest
    args = served_market_args(path, port=9999)
    assert args == ["--seed", "7", "--day", "12", "--listings", "500", "--faults", "prices_x100", "--shifts",
                    "suv+40%@10", "--port", "9999"]
    path.write_text("{not json")
    assert served_market_args(path) is None  # only a note: an unreadable one serves nothing


def test_crawls_finishing_together_both_note_their_market(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "marketplace.json"
    markets = [{"seed": 7, "day": day, "listings": 500, "faults": frozenset(), "shifts": ()} for day in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda market: record_market(path, market), markets))  # none raises
    assert served_market_args(path) is not None
    assert not [p for p in tmp_path.iterdir() if p.name != "marketplace.json"], "no temporary file left behind"
