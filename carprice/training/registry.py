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
    train_cutoff: pd.Timestamp
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
_AWAITING = "trained; awaiting evaluation"


def register_challenger(wh: Warehouse, saved: SavedModel, *, trained_at: datetime, train_batches: list[str],
                        code: str, params: dict, features: list[str], metrics: dict, n_train: int, n_holdout: int,
                        train_cutoff: pd.Timestamp, trained_because: str = "requested by hand") -> list[str]:
    """Record a newly trained model as a challenger, with why it was trained; returns the earlier challengers it
    supersedes.

    Only the newest challenger is ever judged, so one left by a training run that was killed before its
    judgement is rejected here rather than left awaiting evaluation forever.
    """
    return store.add_model(wh, {
        "version": saved.version, "trained_at": trained_at, "status": CHALLENGER, "status_reason": _AWAITING,
        "artifact_path": str(saved.path), "sha256": saved.sha256, "train_batches": train_batches,
        "code_version": code, "params": json.dumps(params, default=str), "features": json.dumps(features),
        "metrics": json.dumps(metrics, default=str), "n_train": n_train, "n_holdout": n_holdout,
        "train_cutoff": train_cutoff.to_pydatetime(), "trained_because": trained_because}, trained_at, _AWAITING,
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


def _row_to_model(row: pd.Series) -> RegisteredModel:
    return RegisteredModel(version=row["version"], status=row["status"], artifact_path=Path(row["artifact_path"]),
                           sha256=row["sha256"], metrics=json.loads(row["metrics"]), params=json.loads(row["params"]),
                           features=json.loads(row["features"]), train_batches=list(row["train_batches"]),
                           train_cutoff=pd.Timestamp(row["train_cutoff"]),
                           trained_because=row["trained_because"] if isinstance(row.get("trained_because"), str)
                           else "")


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
