"""The model registry: which model versions exist, what they were built from, and which one serves."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from carprice import __version__
from carprice.config import PROJECT_DIR
from carprice.modeling import SavedModel
from carprice.warehouse import Warehouse


class NoChampionError(LookupError):
    """The registry has no model serving yet."""


@dataclass(frozen=True)
class RegisteredModel:
    version: str
    artifact_path: Path
    sha256: str
    metrics: dict
    train_batches: list[str]


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


def register_champion(warehouse: Warehouse, saved: SavedModel, *, trained_at: datetime, train_batches: list[str],
                      code: str, params: dict, features: list[str], metrics: dict, n_train: int,
                      n_holdout: int) -> None:
    """Record a new model as champion; the previous champion is archived, in the same transaction."""
    with warehouse.transaction() as con:
        con.execute("UPDATE model_registry SET status = 'archived', status_reason = ? WHERE status = 'champion'",
                    [f"replaced by {saved.version}"])
        con.execute(
            "INSERT INTO model_registry VALUES (?, ?, 'champion', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [saved.version, trained_at, "newest model trained on validated data", str(saved.path), saved.sha256,
             train_batches, code, json.dumps(params, default=str), json.dumps(features), json.dumps(metrics),
             n_train, n_holdout],
        )


def champion(warehouse: Warehouse) -> RegisteredModel:
    """The serving model; NoChampionError if none has been trained."""
    rows = warehouse.query(
        "SELECT version, artifact_path, sha256, metrics, train_batches FROM model_registry "
        "WHERE status = 'champion' ORDER BY trained_at DESC LIMIT 1")
    if rows.empty:
        raise NoChampionError("no champion model in the registry: materialize price_model first")
    row = rows.iloc[0]
    return RegisteredModel(version=row["version"], artifact_path=Path(row["artifact_path"]), sha256=row["sha256"],
                           metrics=json.loads(row["metrics"]), train_batches=list(row["train_batches"]))
