#!/usr/bin/env python3
"""Set up carprice from a bare Python 3.11+ and run it: ``python3 bootstrap.py run`` or ``... test``.

Creates ``.venv`` beside this file, installs the exact versions in requirements.lock
(again only when the lock file changes), installs carprice itself in editable mode,
then hands over to ``carprice run`` or ``pytest`` with any further arguments.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".carprice-installed"


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_environment() -> None:
    """Create the virtual environment and install the locked dependencies if they are not current."""
    if sys.version_info < (3, 11):  # noqa: UP036 (bootstrap.py is run by whatever python3 a machine has)
        sys.exit(f"carprice needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not _bin("python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(_bin("python")), "-m", "pip", "--disable-pip-version-check"]
    print("installing locked dependencies (first run only; a few minutes)", flush=True)
    subprocess.run([*pip, "install", "--quiet", "-r", str(LOCK)], check=True)
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    STAMP.write_text(wanted)


# The suite on two pytest-xdist workers: most tests keep about one core busy (a crawl, a Dagster run, LightGBM's one
# thread below 50k rows) or wait on their subprocesses. A file stays on one worker, so a module's fixtures are built
# once; files go out in the conftest's order (slow modules first), not xdist's (most tests first). `-n 0` after
# `test` runs the tests in this process, one after another.
PARALLEL = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]

# Debian packages a test tier needs: the price API's pages are tested in headless Chromium.
SYSTEM_PACKAGES = {"chromium": "chromium"}


def ensure_system_packages() -> None:
    """Install the Debian packages the tests need when they are missing (with apt-get, as root or with sudo);
    without apt-get, or if it fails, the tests that need them are skipped with the reason."""
    import shutil

    missing = [package for command, package in SYSTEM_PACKAGES.items() if not shutil.which(command)]
    if not missing or not shutil.which("apt-get"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"installing {', '.join(missing)} (apt-get; the browser tests need it)", flush=True)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    for step in (["apt-get", "update", "-qq"], install):
        if subprocess.run([*sudo, *step]).returncode != 0:
            print(f"warning: could not install {', '.join(missing)}; the tests that need it will be skipped",
                  file=sys.stderr, flush=True)
            return


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__)
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "setup":
        return 0
    if command == "run":
        args = [str(_bin("carprice")), "run", *rest]
    else:
        ensure_system_packages()
        parallel = [] if any("no:xdist" in arg for arg in rest) else PARALLEL
        args = [str(_bin("python")), "-m", "pytest", *parallel, *rest]
    return subprocess.run(args).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
