"""`scripts/soak`: run the seeded soak (`test_soak`) under pytest and print its JSON report.

    scripts/soak [--hours 24] [--seed 1] [--out report.json]

Nothing here imports Home Assistant: its test plugin must load first, inside pytest.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import contextlib
import json
import os
from pathlib import Path
import sys
import tempfile
from typing import Final

import pytest

ENV_HOURS: Final = "EMS_SOAK_HOURS"
ENV_SEED: Final = "EMS_SOAK_SEED"
ENV_REPORT: Final = "EMS_SOAK_REPORT"
ENV_RUN_SLOW: Final = "EMS_RUN_SLOW"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak under pytest and print its report."""
    parser = argparse.ArgumentParser(
        prog="scripts/soak", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "soak.json"
        os.environ.update(
            {
                ENV_HOURS: str(args.hours),
                ENV_SEED: str(args.seed),
                ENV_REPORT: str(report_path),
                ENV_RUN_SLOW: "1",
            }
        )
        here = Path(__file__).with_name("test_soak.py")
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the report's
            status = pytest.main(
                [str(here), "-p", "no:cacheprovider", "-q", "--show-capture=no", "--tb=line"]
            )
        if not report_path.exists():
            sys.stderr.write(f"the soak did not finish (pytest exit status {status})\n")
            return int(status) or 1
        report = json.loads(report_path.read_text(encoding="utf-8"))
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
