"""HAProxy for real: bench/haproxy_failover.py runs Debian's haproxy with
conf/haproxy/haproxy.cfg (ports rewritten) in front of two nodes on one PostgreSQL,
SIGKILLs one mid-load, and checks from the journal and the host's record that the
terminals carried on and nothing was lost or charged twice. `.ci/run` installs
haproxy; without it (or PostgreSQL) the test is skipped and says which is missing."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        return "haproxy is not installed (apt-get install haproxy; .ci/run does)"
    if not (shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb")):
        return "PostgreSQL's initdb is not installed (apt-get install postgresql-15)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_haproxy_failover_with_the_shipped_config(tmp_path: Path) -> None:
    out = tmp_path / "failover.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "haproxy_failover.py"),
         "--duration", "10", "--kill-at", "4", "--terminals", "10", "--json", str(out)],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] is True
    assert all(report["checks"].values()), report["checks"]
    assert report["requests_after_kill"] > 0 and report["lost"] == [] and report["stuck"] == []
