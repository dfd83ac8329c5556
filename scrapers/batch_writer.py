"""Write one batch to the landing zone: it appears whole, with its manifest, or not at all.

The layout is the contract with the platform: ``<landing>/<source>/<batch id>/`` holding
``listings.jsonl``, ``rejects.jsonl`` and ``manifest.json``, written under ``.tmp-<batch id>``
and renamed into place when complete. While it is written, the ``.tmp-`` folder names its writer
(process id and host) in a ``.writer`` file, so a folder whose writer died can be told from one in use.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapers import __version__

# Source names and batch ids become folder names: plain names only, so none can point outside the landing zone.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,120}")
TMP_PREFIX, WRITER_FILE = ".tmp-", ".writer"


def safe_name(kind: str, value: object) -> str:
    """``value`` if it is a plain name (letters, digits, '_' and '-'); ValueError otherwise."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ValueError(f"a {kind} is a plain name of letters, digits, '_' and '-' (it names a folder), "
                         f"got {value!r}")
    return value


def make_batch_id(source: str, at: datetime) -> str:
    """A batch name that sorts by time and never collides: ``<source>-<UTC time>-<random>``."""
    return f"{source}-{at:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class BatchWriter:
    """Collects one batch's listings and rejects in a temporary folder, then publishes it atomically."""

    def __init__(self, landing_dir: Path, source: str, batch_id: str | None = None):
        self.source = safe_name("source", source)
        self.started_at = datetime.now(UTC)
        self.batch_id = safe_name("batch id", batch_id or make_batch_id(source, self.started_at))
        self.final_dir = Path(landing_dir) / source / self.batch_id
        self.tmp_dir = Path(landing_dir) / source / f"{TMP_PREFIX}{self.batch_id}"
        self.tmp_dir.mkdir(parents=True)
        (self.tmp_dir / WRITER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}),
                                                encoding="utf-8")
        # Open for the whole crawl, closed by finish(): items arrive one at a time between the two.
        self._listings = open(self.tmp_dir / "listings.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self._rejects = open(self.tmp_dir / "rejects.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.counts = {"listings": 0, "rejects": 0}
        self.reasons: dict[str, int] = {}

    def add_listing(self, record: dict[str, Any]) -> None:
        self._listings.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.counts["listings"] += 1

    def add_reject(self, record: dict[str, Any]) -> None:
        self._rejects.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.counts["rejects"] += 1
        reason = str(record.get("reason", ""))
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def finish(self, **manifest: Any) -> Path:
        """Write the manifest (extra fields from ``manifest``) and rename the batch into place."""
        self._listings.close()
        self._rejects.close()
        counts = {**self.counts, **manifest.pop("counts", {})}
        document = {
            "batch_id": self.batch_id,
            "source": self.source,
            "spider_version": __version__,
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            **manifest,
            "counts": counts,
            "reject_reasons": self.reasons,
            "files": {"listings": "listings.jsonl", "rejects": "rejects.jsonl"},
        }
        with open(self.tmp_dir / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        (self.tmp_dir / WRITER_FILE).unlink()
        os.rename(self.tmp_dir, self.final_dir)
        return self.final_dir

    def discard(self) -> None:
        """Remove the unfinished batch: nothing lands."""
        self._listings.close()
        self._rejects.close()
        shutil.rmtree(self.tmp_dir)
