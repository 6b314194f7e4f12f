"""Run the simulated site as a standalone Modbus TCP server.

python -m simulator --host 127.0.0.1 --port 5020 [--speed N] [--seed S]
                    [--latitude 52.5] [--pv-kwp 8] [--start 2026-06-21T06:00:00+00:00]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
import logging
import signal

from simulator.physics import SiteConfig
from simulator.server import SiteSimulator

_LOGGER = logging.getLogger("simulator")


def _aware_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the UTC offset, e.g. 2026-06-21T06:00:00+00:00")
    return moment


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latitude", type=float, default=52.5)
    parser.add_argument("--pv-kwp", type=float, default=8.0)
    parser.add_argument(
        "--start",
        type=_aware_datetime,
        default=None,
        help="simulated start time, ISO 8601 with offset (default: now, UTC)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    start = args.start or datetime.now(tz=UTC).replace(microsecond=0)
    config = SiteConfig(latitude=args.latitude, pv_kwp=args.pv_kwp, seed=args.seed, start=start)
    simulator = SiteSimulator(config, speed=args.speed)
    await simulator.start(args.host, args.port)
    try:
        _LOGGER.info(
            "Simulated site on %s:%d, unit ids %s, speed %gx, start %s",
            args.host,
            simulator.port,
            ", ".join(str(unit) for unit in simulator.unit_ids),
            args.speed,
            start.isoformat(),
        )
        await stopping.wait()
    finally:
        await simulator.stop()
        _LOGGER.info("Simulated site stopped")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
