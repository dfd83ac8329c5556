"""Child processes go down with their parent: stopped as a group, and sent SIGTERM when the parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carprice.processes import run_child, start_child, stop_child
from carprice_tests.conftest import descendants, running, still_running

# Real crawls, Dagster runs or processes: the integration tier.
pytestmark = pytest.mark.integration

# A child that starts a grandchild deaf to SIGTERM, prints the grandchild's pid and waits.
STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    grandchild = subprocess.Popen([sys.executable, "-c", deaf])
    print(grandchild.pid, flush=True)
    time.sleep(60)
""")


def test_a_stopped_child_takes_what_it_started_with_it():
    child = start_child([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    assert os.getpgid(child.pid) == os.getpgid(grandchild) == child.pid != os.getpgrp(), "a process group of its own"
    stop_child(child, grace_s=1)
    assert child.returncode == -signal.SIGTERM
    assert still_running({grandchild: "grandchild"}, within_s=5) == {}, "killed once the grace period was over"


def test_children_die_with_a_parent_that_is_killed_outright():
    # A parent that started a server and a command, both in groups of their own, and gets SIGKILL: it runs no code.
    parent_code = textwrap.dedent("""
        import signal, sys, threading
        from carprice.processes import run_child, start_child
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a command a shell starts in the background
        server = start_child([sys.executable, "-c", "import time; time.sleep(60)"])
        threading.Thread(target=run_child, args=([sys.executable, "-c", "import time; time.sleep(60)"],),
                         kwargs={"timeout_s": 60}, daemon=True).start()
        print(server.pid, flush=True)
        threading.Event().wait(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    server = int(parent.stdout.readline())
    deadline = time.monotonic() + 10
    # Both started: their command lines are the new programs' once they have exec'd.
    children = descendants(parent.pid)
    # (A forked child not yet exec'd still shows the parent's command line, which holds the same text inside.)
    while sum(cmd.endswith("import time; time.sleep(60)") for cmd in children.values()) < 2:
        assert time.monotonic() < deadline, f"the children did not start: {children}"
        time.sleep(0.05)
        children = descendants(parent.pid)
    try:
        assert server in children and len(children) == 2
        assert all(_ignored_signals(pid) & {signal.SIGINT, signal.SIGTERM} == set() for pid in children)
        parent.kill()
        parent.wait()
        assert still_running(children, within_s=5) == {}
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_run_child_returns_the_output_and_stops_the_child_on_timeout():
    done = run_child([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                     timeout_s=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_child([sys.executable, "-c", "import time; time.sleep(60)"], timeout_s=1)
    assert time.monotonic() - started < 5, "stopped, not waited for"


def _ignored_signals(pid: int) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    return {sig for sig in range(1, 65) if mask & (1 << (sig - 1))}


def test_a_zombie_is_not_alive():
    """A landing folder's writer that has exited is gone, even while nobody has collected its exit status yet."""
    from carprice.processes import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split(")")[1].split()[0] != "Z":  # exited, not yet waited for
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid) and pid_alive(os.getpid())
