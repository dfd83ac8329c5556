"""Child processes that go down with their parent, and whether a process is alive.

Each child runs in a process group of its own, so that stopping it reaches whatever it started in turn (``dg dev``'s
webserver, daemon and code servers) and nothing else. A parent killed outright (SIGKILL, the OOM killer) runs no
code on its way out, so on Linux the kernel is asked to send each child SIGTERM when its parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# prctl(PR_SET_PDEATHSIG, sig): the kernel sends sig to the calling process when the thread that started it exits,
# so a child is started and stopped by the same thread.
PR_SET_PDEATHSIG = 1
# Looked up once here, not in the child: between fork and exec a child of a threaded process should do little.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

# How long a child may take to shut down once sent SIGTERM (dg dev stops its whole tree in about 4 s).
STOP_GRACE_S = 10.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine. A zombie does not: it has exited and only waits for its
    parent (or, orphaned, for init, which may take its time on a loaded machine) to collect its exit status."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists()  # gone since, unless there is no /proc to look in
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] != "Z"


def _die_with(parent: int) -> Callable[[], None]:
    def in_child() -> None:
        # A shell that starts a command in the background makes it ignore SIGINT, and Dagster gives SIGTERM whatever
        # SIGINT does: a child inheriting that would ignore the SIGTERM that stops it.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the prctl call: no signal will come
                os._exit(1)

    return in_child


def start_child(cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start ``cmd`` in a process group of its own, to be sent SIGTERM when this process dies."""
    # start_new_session (setsid) runs in the child before preexec_fn and neither undoes the other: the death signal
    # belongs to the process and survives setsid and exec.
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with(os.getpid()), **popen_kwargs)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_child(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the process group of a child from ``start_child``, then SIGKILL to what is left of it after
    ``grace_s`` seconds."""
    deadline = time.monotonic() + grace_s
    _signal_group(proc.pid, signal.SIGTERM)
    # communicate rather than wait: a child blocked writing to a full pipe would never get to exit.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=grace_s)
    # What the child started may outlive it: the group is empty only when they are gone too.
    while _signal_group(proc.pid, 0):
        if time.monotonic() > deadline:
            _signal_group(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()


def run_child(cmd: list[str], *, timeout_s: float, **popen_kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` to its end with ``start_child``, its output captured as text; the child is stopped if this
    process is interrupted, or after ``timeout_s`` seconds (raising subprocess.TimeoutExpired)."""
    proc = start_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_kwargs)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except BaseException:
        stop_child(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
