"""A certification run's verdicts: one result per case, and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import attrs

__all__ = ["CaseResult", "write_junit"]


@attrs.frozen
class CaseResult:
    """One case's verdict: `reason` says which step failed and why (None when passed)."""

    name: str
    passed: bool
    seconds: float
    reason: str | None = None
    steps_run: int = 0


def write_junit(results: Sequence[CaseResult], path: str | Path, suite: str) -> None:
    """A JUnit XML report, one testcase per case, for CI."""
    failures = sum(1 for r in results if not r.passed)
    total = sum(r.seconds for r in results)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{total:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname=suite, name=r.name, time=f"{r.seconds:.3f}"
        )
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.reason or "failed")
            failure.text = r.reason or "failed"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
