"""The model registry: every version, what it was built from, its status, and every change of status.

Statuses: ``challenger`` (trained, not yet judged), ``champion`` (serving; at most one),
``rejected`` (judged and not promoted), ``archived`` (served before). Each change is one
transaction that also appends to ``model_events`` with its reason.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from carprice import __version__
from carprice.config import PROJECT_DIR
from carprice.training import store
from carprice.training.modeling import SavedModel, load_model
from carprice.training.splitting import LISTING_DATE, TIME_COLUMNS, Split
from carprice.warehouse import Warehouse


class NoChampionError(LookupError):
    """The registry has no model serving yet."""


class RegistryError(ValueError):
    """A registry change that is not allowed (unknown version, wrong status)."""


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    status: str
    artifact_path: Path
    sha256: str
    metrics: dict
    params: dict
    features: list[str]
    train_batches: list[str]
    train_cutoff: pd.Timestamp | None
    trained_at: pd.Timestamp
    split: Split
    trained_because: str = ""


def code_version(project_dir: Path = PROJECT_DIR) -> str:
    """The package version plus the git commit when run from a checkout ("+dirty" with local edits)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_dir, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_dir,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{sha}{'.dirty' if dirty else ''}"


CHALLENGER, CHAMPION, REJECTED, ARCHIVED = "challenger", "champion", "rejected", "archived"
# Beside a model split at random: the listing keys it held out (not part of its checksum).
HELD_OUT_FILE = "held_out_listings.parquet"
_AWAITING = "trained; awaiting evaluation"


def register_challenger(wh: Warehouse, saved: SavedModel, *, trained_at: datetime, train_batches: list[str],
                        code: str, params: dict, features: list[str], metrics: dict, n_train: int, n_holdout: int,
                        train_cutoff: pd.Timestamp | None, split: dict | None = None,
                        trained_because: str = "requested by hand") -> list[str]:
    """Record a newly trained model as a challenger, with how it was split and why it was trained; returns the earlier
    challengers it supersedes.

    Only the newest challenger is ever judged, so one left by a training run that was killed before its
    judgement is rejected here rather than left awaiting evaluation forever.
    """
    return store.add_model(wh, {
        "version": saved.version, "trained_at": trained_at, "status": CHALLENGER, "status_reason": _AWAITING,
        "artifact_path": str(saved.path), "sha256": saved.sha256, "train_batches": train_batches,
        "code_version": code, "params": json.dumps(params, default=str), "features": json.dumps(features),
        "metrics": json.dumps(metrics, default=str), "n_train": n_train, "n_holdout": n_holdout,
        "train_cutoff": None if train_cutoff is None else train_cutoff.to_pydatetime(),
        "split": None if split is None else json.dumps(split, default=str), "trained_because": trained_because},
        trained_at, _AWAITING,
        supersede=(CHALLENGER, REJECTED))


def promote(wh: Warehouse, version: str, reason: str) -> None:
    """Make ``version`` the champion; the current champion is archived, in the same transaction."""
    now = datetime.now(UTC)
    with wh.transaction() as con:
        if store.status_in(con, version) is None:
            raise RegistryError(f"no model version {version!r} in the registry")
        current = store.version_with_status(con, CHAMPION)
        if current and current != version:
            store.set_status(con, current, ARCHIVED, f"replaced by {version}: {reason}", now)
        store.set_status(con, version, CHAMPION, reason, now)


def reject(wh: Warehouse, version: str, reason: str) -> None:
    """Record that a challenger was judged and not promoted."""
    with wh.transaction() as con:
        store.set_status(con, version, REJECTED, reason, datetime.now(UTC))


def recorded_split(split_json: str | None, train_cutoff: pd.Timestamp | None, n_train: int, n_holdout: int) -> Split:
    """The split a registry row records; a row from before splits were recorded was split by listing date."""
    if isinstance(split_json, str):
        return Split.from_dict(json.loads(split_json))
    return Split(LISTING_DATE, float("nan"), n_train, n_holdout, time_column=TIME_COLUMNS[LISTING_DATE],
                 cutoff=train_cutoff)


def _row_to_model(row: pd.Series) -> RegisteredModel:
    cutoff = None if pd.isna(row["train_cutoff"]) else pd.Timestamp(row["train_cutoff"])
    return RegisteredModel(version=row["version"], status=row["status"], artifact_path=Path(row["artifact_path"]),
                           sha256=row["sha256"], metrics=json.loads(row["metrics"]), params=json.loads(row["params"]),
                           features=json.loads(row["features"]), train_batches=list(row["train_batches"]),
                           train_cutoff=cutoff, trained_at=pd.Timestamp(row["trained_at"]),
                           split=recorded_split(row.get("split"), cutoff, _count(row["n_train"]),
                                                _count(row["n_holdout"])),
                           trained_because=row["trained_because"] if isinstance(row.get("trained_because"), str)
                           else "")


def _count(value) -> int:
    return 0 if pd.isna(value) else int(value)


def write_held_out_keys(folder: Path, listing_keys: pd.Series) -> None:
    """Keep the listing keys a model held out beside it (a random split is known by them, not by a time)."""
    pd.DataFrame({"listing_key": listing_keys.astype(str).to_numpy()}).to_parquet(folder / HELD_OUT_FILE)


def held_out_keys(model: RegisteredModel) -> set[str] | None:
    """The listing keys ``model`` held out at random; None when it kept none or they are gone."""
    path = model.artifact_path / HELD_OUT_FILE
    if not path.exists():
        return None
    return set(pd.read_parquet(path)["listing_key"])


def get_model(wh: Warehouse, version: str) -> RegisteredModel:
    """One registered version; RegistryError if there is none."""
    row = store.model_row(wh, version)
    if row is None:
        raise RegistryError(f"no model version {version!r} in the registry")
    return _row_to_model(row)


def champion(wh: Warehouse) -> RegisteredModel:
    """The serving model; NoChampionError if none has been promoted."""
    row = store.newest_row_with_status(wh, CHAMPION)
    if row is None:
        raise NoChampionError("no champion model in the registry: train and promote one first")
    return _row_to_model(row)


def latest_challenger(wh: Warehouse) -> RegisteredModel:
    """The newest challenger awaiting judgement; RegistryError if there is none."""
    row = store.newest_row_with_status(wh, CHALLENGER)
    if row is None:
        raise RegistryError("no challenger awaiting evaluation: materialize challenger_model first")
    return _row_to_model(row)


def rollback(wh: Warehouse, version: str, reason: str) -> None:
    """Make an earlier champion (now archived) serve again, after checking its artifact still loads."""
    if not reason.strip():
        raise RegistryError("a rollback needs a reason")
    model = get_model(wh, version)
    if model.status != ARCHIVED:
        raise RegistryError(f"{version} is {model.status}; only a model that served before (archived) can "
                            "be rolled back to")
    load_model(model.artifact_path, expected_sha256=model.sha256)
    promote(wh, version, f"rollback: {reason.strip()}")
