"""Servability check: load a model artifact in a fresh process and predict a sample, as serving would.

    python -m carprice.training.serving_check MODEL_DIR SHA256 SAMPLE.parquet EXPECTED.npy

Exits 0 when the artifact loads (checksum verified) and its predictions match the trainer's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from carprice.processes import run_child
from carprice.training.modeling import ModelArtifactError, load_model


def check_servable(folder: Path, sha256: str, sample: pd.DataFrame, expected: np.ndarray,
                   timeout_s: float = 300) -> tuple[bool, str]:
    """Run the check in a child process; (passed, what it said)."""
    with tempfile.TemporaryDirectory() as tmp:
        sample_path, expected_path = Path(tmp) / "sample.parquet", Path(tmp) / "expected.npy"
        sample.to_parquet(sample_path)
        np.save(expected_path, expected)
        proc = run_child([sys.executable, "-m", "carprice.training.serving_check", str(folder), sha256,
                          str(sample_path), str(expected_path)], timeout_s=timeout_s)
    message = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, message[-1] if message else f"exit {proc.returncode}"


def main(argv: list[str]) -> int:
    folder, sha256, sample_path, expected_path = argv
    try:
        model = load_model(Path(folder), expected_sha256=sha256)
    except ModelArtifactError as exc:
        print(f"not servable: {exc}")
        return 1
    predicted = model.predict_price(pd.read_parquet(sample_path))
    expected = np.load(expected_path)
    if predicted.shape != expected.shape or not np.allclose(predicted, expected, rtol=1e-6):
        gap = np.max(np.abs(predicted - expected))
        print(f"not servable: predictions differ from the trainer's (max diff {gap:.3g})")
        return 1
    print(f"servable: loaded and predicted {len(predicted)} listings in a fresh process")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
