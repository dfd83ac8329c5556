"""The landing zone: immutable batch folders written by the spiders, read by ingestion.

A batch is ``<landing>/<source>/<batch id>/`` with ``listings.jsonl``, ``rejects.jsonl``
and ``manifest.json``; it appears by an atomic rename, so a folder without a leading
``.tmp-`` is complete. A ``.tmp-`` folder whose writer died before the rename is stale.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from carprice.processes import pid_alive
from scrapers.batch_writer import TMP_PREFIX, WRITER_FILE, safe_name

# A .tmp- folder nothing has been written to for a day is abandoned whoever wrote it (a writer on another host, a
# reused process id): a crawl times out long before (crawl_timeout_s, 30 minutes by default).
STALE_TMP_AFTER_S = 24 * 3600


class BatchError(ValueError):
    """A landing-zone folder that is not a readable batch."""


@dataclass(frozen=True)
class Batch:
    """One landed crawl: where it is and what its manifest says."""

    batch_id: str
    source: str
    path: Path
    manifest: dict

    @property
    def listings_file(self) -> Path:
        return self.path / self.manifest.get("files", {}).get("listings", "listings.jsonl")

    @property
    def rejects_file(self) -> Path:
        return self.path / self.manifest.get("files", {}).get("rejects", "rejects.jsonl")


def _check_inside(folder: Path, file: Path) -> Path:
    """``file`` with every symlink resolved; BatchError unless that lies directly in ``folder`` (resolved too)."""
    target = file.resolve()
    if target.parent != folder.resolve():
        raise BatchError(f"{file} resolves to {target}, outside its batch folder {folder}")
    return target


def _check_fields(manifest: dict, manifest_file: Path) -> None:
    """BatchError naming the first field of the manifest whose value the batches table could not hold."""
    for key in ("started_at", "finished_at"):
        value = manifest.get(key)
        try:
            if value is not None:
                datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise BatchError(f"{manifest_file}: {key} must be an ISO date and time, got {value!r}") from exc
    for key in ("finish_reason", "spider_version"):
        if not isinstance(manifest.get(key, ""), str | None):
            raise BatchError(f"{manifest_file}: {key} must be text, got {manifest[key]!r}")
    counts = manifest.get("counts", {})
    if not isinstance(counts, dict) or any(type(n) is not int or n < 0 for n in counts.values()):
        raise BatchError(f"{manifest_file}: counts must map names to whole numbers >= 0, got {counts!r}")


def read_batch(path: Path) -> Batch:
    """The batch in folder ``path``; BatchError if its manifest is missing or unreadable."""
    if path.is_symlink():
        raise BatchError(f"{path} is a symlink (to {path.resolve()}): a batch is a folder of the landing zone")
    manifest_file = path / "manifest.json"
    _check_inside(path, manifest_file)
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BatchError(f"{path} has no manifest.json: not a complete batch") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchError(f"{manifest_file} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BatchError(f"{manifest_file} is not a JSON object")
    for key in ("batch_id", "source"):
        if key not in manifest:
            raise BatchError(f"{manifest_file} lacks {key!r}")
        try:
            safe_name(key.replace("_", " "), manifest[key])
        except ValueError as exc:
            raise BatchError(f"{manifest_file}: {exc}") from exc
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise BatchError(f"{manifest_file}: 'files' must map listings/rejects to file names")
    for role, name in files.items():
        # A manifest names files inside its own folder, never a path elsewhere on the machine.
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise BatchError(f"{manifest_file}: the {role} file must be a plain file name in the batch folder, "
                             f"got {name!r}")
    _check_fields(manifest, manifest_file)
    if manifest["batch_id"] != path.name:
        raise BatchError(f"{manifest_file} names batch {manifest['batch_id']!r} but sits in {path.name!r}")
    batch = Batch(batch_id=manifest["batch_id"], source=manifest["source"], path=path, manifest=manifest)
    # A plain name can still be a symlink to anywhere on the machine, or a FIFO that would block its reader.
    for file in (batch.listings_file, batch.rejects_file):
        target = _check_inside(path, file)
        if target.exists() and not target.is_file():
            raise BatchError(f"{file} is not a regular file")
    return batch


def batch_file_bytes(batch: Batch, file: Path) -> bytes:
    """The content of ``file``, one of ``batch``'s files (empty when absent); BatchError if it lies elsewhere.

    Checked again at reading, whatever the manifest said when the batch was read: the folder may have changed since.
    """
    target = _check_inside(batch.path, file)
    if not target.exists():
        return b""
    if not target.is_file():  # a folder, or a FIFO that would block the reader for ever
        raise BatchError(f"{file} is not a regular file")
    return target.read_bytes()


def scan_landing(landing_dir: Path) -> tuple[list[Batch], dict[str, str]]:
    """Complete batches, oldest first, and the folders that look complete but cannot be read (path -> why)."""
    batches, broken = [], {}
    if not landing_dir.exists():
        return batches, broken
    for source_dir in sorted(p for p in landing_dir.iterdir() if p.is_dir()):
        for path in sorted(source_dir.iterdir()):
            if path.is_dir() and not path.name.startswith(".") and (path / "manifest.json").exists():
                try:
                    batches.append(read_batch(path))
                except BatchError as exc:
                    broken[str(path)] = str(exc)
    return sorted(batches, key=lambda b: (b.manifest.get("started_at") or "", b.batch_id)), broken


def find_batch(landing_dir: Path, batch_id: str) -> Batch:
    """The batch with this id; BatchError if the landing zone has none."""
    try:
        safe_name("batch id", batch_id)
    except ValueError as exc:
        raise BatchError(str(exc)) from exc
    for source_dir in (p for p in landing_dir.iterdir() if p.is_dir()) if landing_dir.exists() else ():
        if (source_dir / batch_id).is_dir():
            return read_batch(source_dir / batch_id)
    raise BatchError(f"no batch {batch_id!r} in {landing_dir}")


def tmp_is_stale(writer: dict | None, idle_s: float, host: str, alive: Callable[[int], bool]) -> bool:
    """Whether a ``.tmp-`` folder is abandoned: its writer (``{"pid", "host"}`` or None) was a process on ``host``
    that is not ``alive``, or nothing has been written to it for STALE_TMP_AFTER_S seconds."""
    if idle_s > STALE_TMP_AFTER_S:
        return True
    pid = writer.get("pid") if writer else None
    return writer is not None and writer.get("host") == host and isinstance(pid, int) and not alive(pid)


def _writer_of(folder: Path) -> dict | None:
    try:
        writer = json.loads((folder / WRITER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return writer if isinstance(writer, dict) else None


def _idle_seconds(folder: Path, now: float) -> float:
    # A writer appends to its files all along: the newest of their times is its last sign of life.
    return now - max(p.stat().st_mtime for p in [folder, *folder.iterdir()])


def remove_stale_tmp(landing_dir: Path) -> list[Path]:
    """Remove the ``.tmp-`` folders of the landing zone whose writer is gone (``tmp_is_stale``); returns them."""
    if not landing_dir.exists():
        return []
    host, now, removed = socket.gethostname(), time.time(), []
    for folder in sorted(landing_dir.glob(f"*/{TMP_PREFIX}*")):
        try:
            stale = folder.is_dir() and tmp_is_stale(_writer_of(folder), _idle_seconds(folder, now), host, pid_alive)
        except FileNotFoundError:  # renamed into place or removed while looked at
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def unfinished(batches: list[Batch], decided: set[str]) -> list[Batch]:
    """The landed batches that have no status yet (``decided``: the batch ids that have one), oldest first."""
    return [b for b in batches if b.batch_id not in decided]
