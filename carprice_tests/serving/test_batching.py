"""The batcher that values queued single cars together: a request cancelled while it waits stops nothing."""

from __future__ import annotations

import pytest

from carprice.config import ServingConfig
from carprice.serving.batching import NoChampion, ValuationBatcher
from carprice.serving.holder import ModelHolder


def test_a_cancelled_request_is_skipped_and_the_batcher_keeps_answering(tmp_path):
    holder = ModelHolder(tmp_path / "no-snapshot.duckdb")  # nothing published: every answer is "no champion"
    holder.refresh()
    batcher = ValuationBatcher(holder, ServingConfig())
    waiting = [batcher.submit({"make": "Kia"}) for _ in range(3)]
    assert waiting[1].cancel(), "a queued request can be cancelled (its client went away)"
    batcher.start()
    try:
        for future in (waiting[0], waiting[2], batcher.submit({"make": "Kia"})):
            with pytest.raises(NoChampion, match="no published snapshot"):
                future.result(timeout=10)
    finally:
        batcher.stop()
    assert waiting[1].cancelled()
