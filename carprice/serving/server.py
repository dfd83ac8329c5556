"""Run the price API under uvicorn: in this process (``carprice serve``) or as a child (``carprice ui``, tests,
benchmarks).

    python -m carprice.serving.server --data-dir DATA --host 127.0.0.1 --port 8000   (0 picks a free port)

Prints ``serving http://HOST:PORT`` once the socket listens; the installation's other settings come from the
environment (``Settings.to_env``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from carprice.config import SERVE_PORT, ServingConfig, Settings, load_settings
from carprice.processes import start_child, stop_child
from carprice.serving.app import create_app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = SERVE_PORT,
          config: ServingConfig | None = None) -> None:
    """Serve the price API of ``settings``' installation until Ctrl-C or SIGTERM."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    print(f"serving http://{host}:{bound} (API docs at /docs) from {settings.snapshot_path}", flush=True)
    # One process: the model is loaded once and hot-reloaded in place. Access logs are off: one line per request
    # costs more than a valuation.
    # No X-Forwarded-* rewriting either: nothing here reads the client's address.
    server = uvicorn.Server(uvicorn.Config(create_app(settings, config), log_level="warning", access_log=False,
                                           proxy_headers=False, timeout_graceful_shutdown=5))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or SIGTERM under carprice.cli.main
        server.run(sockets=[sock])


@contextlib.contextmanager
def running_api(settings: Settings, timeout_s: float = 60.0, poll_interval_s: float | None = None
                ) -> Iterator[str]:
    """The price API in a child process for the block; yields its base URL once it listens."""
    cmd = [sys.executable, "-m", "carprice.serving.server", "--data-dir", str(settings.data_dir), "--port", "0"]
    if poll_interval_s is not None:
        cmd += ["--poll-interval", str(poll_interval_s)]
    proc = start_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env={**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("serving "):
            proc.kill()
            raise RuntimeError(f"the price API did not start: {line.strip()} {proc.stderr.read().strip()}")
        url = line.split()[1]
        _wait_listening(url, time.monotonic() + timeout_s)
        yield url
    finally:
        stop_child(proc)


def _wait_listening(url: str, deadline: float) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the carprice price API.")
    parser.add_argument("--data-dir", help="the installation whose published snapshot is served")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=SERVE_PORT, help="0 picks a free port")
    parser.add_argument("--poll-interval", type=float, help="seconds between looks at the snapshot")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.data_dir:
        settings = dataclasses.replace(settings, data_dir=Path(args.data_dir).resolve())
    config = ServingConfig()
    if args.poll_interval:
        config = dataclasses.replace(config, poll_interval_s=args.poll_interval)
    serve(settings, args.host, args.port, config)


if __name__ == "__main__":
    main()
