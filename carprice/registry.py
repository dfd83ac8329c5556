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
from carprice.modeling import SavedModel
from carprice.warehouse import Warehouse

STATUSES = ("challenger", "champion", "rejected", "archived")


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


def register_challenger(wh: Warehouse, saved: SavedModel, *, trained_at: datetime, train_batches: list[str],
                        code: str, params: dict, features: list[str], metrics: dict, n_train: int, n_holdout: int,
                        train_cutoff: pd.Timestamp, trained_because: str = "requested by hand") -> None:
    """Record a newly trained model as a challenger, with why it was trained."""
    with wh.transaction() as con:
        con.execute(
            "INSERT INTO model_registry (version, trained_at, status, status_reason, artifact_path, sha256, "
            "train_batches, code_version, params, features, metrics, n_train, n_holdout, train_cutoff, "
            "trained_because) VALUES (?, ?, 'challenger', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [saved.version, trained_at, "trained; awaiting evaluation", str(saved.path), saved.sha256, train_batches,
             code, json.dumps(params, default=str), json.dumps(features), json.dumps(metrics, default=str),
             n_train, n_holdout, train_cutoff.to_pydatetime(), trained_because])
        con.execute("INSERT INTO model_events VALUES (?, ?, 'challenger', 'trained; awaiting evaluation')",
                    [saved.version, trained_at])


def _set_status(con, version: str, status: str, reason: str, at: datetime) -> None:
    con.execute("UPDATE model_registry SET status = ?, status_reason = ? WHERE version = ?", [status, reason, version])
    con.execute("INSERT INTO model_events VALUES (?, ?, ?, ?)", [version, at, status, reason])


def promote(wh: Warehouse, version: str, reason: str) -> None:
    """Make ``version`` the champion; the current champion is archived, in the same transaction."""
    now = datetime.now(UTC)
    with wh.transaction() as con:
        row = con.execute("SELECT status FROM model_registry WHERE version = ?", [version]).fetchone()
        if row is None:
            raise RegistryError(f"no model version {version!r} in the registry")
        current = con.execute("SELECT version FROM model_registry WHERE status = 'champion'").fetchone()
        if current and current[0] != version:
            _set_status(con, current[0], "archived", f"replaced by {version}: {reason}", now)
        _set_status(con, version, "champion", reason, now)


def reject(wh: Warehouse, version: str, reason: str) -> None:
    """Record that a challenger was judged and not promoted."""
    with wh.transaction() as con:
        _set_status(con, version, "rejected", reason, datetime.now(UTC))


def _row_to_model(row: pd.Series) -> RegisteredModel:
    return RegisteredModel(version=row["version"], status=row["status"], artifact_path=Path(row["artifact_path"]),
                           sha256=row["sha256"], metrics=json.loads(row["metrics"]), params=json.loads(row["params"]),
                           features=json.loads(row["features"]), train_batches=list(row["train_batches"]),
                           train_cutoff=pd.Timestamp(row["train_cutoff"]),
                           trained_because=row["trained_because"] if isinstance(row.get("trained_because"), str) else "")


def get_model(wh: Warehouse, version: str) -> RegisteredModel:
    rows = wh.query("SELECT * FROM model_registry WHERE version = ?", [version])
    if rows.empty:
        raise RegistryError(f"no model version {version!r} in the registry")
    return _row_to_model(rows.iloc[0])


def champion(wh: Warehouse) -> RegisteredModel:
    """The serving model; NoChampionError if none has been promoted."""
    rows = wh.query("SELECT * FROM model_registry WHERE status = 'champion'")
    if rows.empty:
        raise NoChampionError("no champion model in the registry: train and promote one first")
    return _row_to_model(rows.iloc[0])


def latest_challenger(wh: Warehouse) -> RegisteredModel:
    rows = wh.query("SELECT * FROM model_registry WHERE status = 'challenger' ORDER BY trained_at DESC LIMIT 1")
    if rows.empty:
        raise RegistryError("no challenger awaiting evaluation: materialize challenger_model first")
    return _row_to_model(rows.iloc[0])


def models(wh: Warehouse) -> pd.DataFrame:
    """Every version with status, reason, data and code version and main metrics, newest first."""
    return wh.query("""SELECT version, status, status_reason, trained_at, trained_because, code_version,
                              len(train_batches) AS batches,
                              n_train, round((metrics->>'$.evaluation.mae_eur')::DOUBLE) AS evaluation_mae_eur
                       FROM model_registry ORDER BY trained_at DESC""")


def history(wh: Warehouse, version: str | None = None) -> pd.DataFrame:
    where = "WHERE version = ?" if version else ""
    return wh.query(f"SELECT * FROM model_events {where} ORDER BY changed_at", [version] if version else [])


def rollback(wh: Warehouse, version: str, reason: str) -> None:
    """Make an earlier champion (now archived) serve again, after checking its artifact still loads."""
    from carprice.modeling import load_model

    if not reason.strip():
        raise RegistryError("a rollback needs a reason")
    model = get_model(wh, version)
    if model.status != "archived":
        raise RegistryError(f"{version} is {model.status}; only a model that served before (archived) can "
                            "be rolled back to")
    load_model(model.artifact_path, expected_sha256=model.sha256)
    promote(wh, version, f"rollback: {reason.strip()}")
