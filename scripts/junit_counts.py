"""Print "N passed, M failed[, K skipped]" from a pytest JUnit XML report (scripts/test).

Usage: junit_counts.py REPORT PYTEST_EXIT_CODE. Errors count as failures. A run that failed
with no failed test (a collection error, no test found, a missing report) counts one failure,
so a broken run never reads as a pass.
"""

from __future__ import annotations

from pathlib import Path
import sys
from xml.etree import ElementTree as ET


def counts(report: Path, exit_code: int) -> str:
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        return f"0 passed, 1 failed (pytest exited {exit_code} without a report)"
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    note = ""
    if exit_code != 0 and failed == 0:
        failed, note = 1, f" (pytest exited {exit_code})"
    line = f"{max(total - failed - skipped, 0)} passed, {failed} failed"
    return (f"{line}, {skipped} skipped" if skipped else line) + note


if __name__ == "__main__":
    print(counts(Path(sys.argv[1]), int(sys.argv[2])))
