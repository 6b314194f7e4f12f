"""`python -m simulator` serves until SIGTERM and then stops cleanly."""

from __future__ import annotations

from pathlib import Path
import re
import signal
import socket
import subprocess
import sys

REPOSITORY = Path(__file__).resolve().parents[2]


def test_cli_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--speed", "60", "--seed", "3"],
        cwd=REPOSITORY,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = process.stderr.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+), unit ids 1, 2, 3, 4, 5", started)
        assert match, started
        with socket.create_connection(("127.0.0.1", int(match[1])), timeout=2):
            pass
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert "stopped" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
