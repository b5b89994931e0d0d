"""HAProxy failover: two nodes on one PostgreSQL, one killed with SIGKILL mid-run.

    .venv/bin/python bench/haproxy_failover.py [--duration 20] [--kill-at 8] [--json out.json]

What it does (loopback only):
  1. finds Debian's HAProxy (`.ci/run` installs it; without it, one line and exit 1);
  2. starts a throwaway PostgreSQL, provisions the key store and load terminals in it;
  3. starts the acquirer simulator (recording what reached the host), two
     `forecourt serve` nodes sharing the database, and HAProxy with
     conf/haproxy/haproxy.cfg (ports rewritten) in front of them;
  4. runs `forecourt sim load --reconnect` through HAProxy, SIGKILLs node 1 at
     `--kill-at` seconds;
  5. waits until node 2 has taken over node 1's in-flight transactions and the
     SAF queue is empty, then checks, from the journal and the host's record:
     - the terminals carried on through node 2 (answers after the kill);
     - no transaction is left `forwarded` / `reversal_pending`;
     - every approval the host gave has a journalled answer (approved) or a
       delivered reversal (reversed): nothing lost;
     - no terminal request was approved twice at the host: nothing charged twice.
Exit 0 when every check holds.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _nodes

HAPROXY_CFG = _nodes.REPO / "conf" / "haproxy" / "haproxy.cfg"


def ensure_haproxy() -> str:
    """Debian's haproxy binary (`.ci/run` installs it, as it installs PostgreSQL)."""
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        raise SystemExit("haproxy is not installed: apt-get install haproxy (.ci/run does)")
    return found


def haproxy_config(dest: Path, front: int, nodes: list[tuple[int, int]]) -> Path:
    """conf/haproxy/haproxy.cfg with this run's ports (the shipped file is what is tested)."""
    text = HAPROXY_CFG.read_text()
    text = text.replace("bind 127.0.0.1:5000", f"bind 127.0.0.1:{front}")
    for i, (port, metrics) in enumerate(nodes, start=1):
        text = re.sub(
            rf"server node{i} 127\.0\.0\.1:\d+ check port \d+",
            f"server node{i} 127.0.0.1:{port} check port {metrics}",
            text,
        )
    dest.write_text(text)
    return dest


def journal_rows(dsn: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return list(
            conn.execute(
                "SELECT txn_id, node, terminal_id, stan, mti_class, state, amount, "
                "acquirer_stan, answered_at, received_at FROM transactions"
            ).fetchall()
        )


def saf_open(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM saf WHERE state = 'in_flight' OR "
            "(state = 'pending' AND next_attempt_at < extract(epoch from now()) + 86400)"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--kill-at", type=float, default=8.0)
    ap.add_argument("--terminals", type=int, default=20)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    haproxy = ensure_haproxy()
    report: dict[str, Any] = {}
    with _nodes.workdir(args.keep) as work, _nodes.postgres() as dsn, _nodes.processes() as procs:
        data_dir = work / "data"
        _nodes.provision(data_dir, dsn, args.terminals)
        acq_port, front = _nodes.free_port(), _nodes.free_port()
        record = work / "acquirer.jsonl"
        acq = _nodes.start(
            [*_nodes.FORECOURT, "sim", "acquirer", "--config",
             str(_nodes.acquirer_config(work / "acq.toml", acq_port, record)),
             "--port", str(acq_port)],
            work / "acquirer.log",
        )  # fmt: skip
        procs.append(acq)
        _nodes.wait_port(acq_port)
        ports = [(_nodes.free_port(), _nodes.free_port()) for _ in range(2)]
        nodes = []
        for i, (port, metrics) in enumerate(ports, start=1):
            cfg = _nodes.node_config(
                work / f"node{i}.toml",
                node=f"node{i}",
                data_dir=data_dir,
                port=port,
                metrics_port=metrics,
                acquirer_port=acq_port,
                database=dsn,
                request_timeout_s=2.0,
                lease_s=3.0,
            )
            nodes.append(
                _nodes.start(
                    [*_nodes.FORECOURT, "serve", "--config", str(cfg)], work / f"node{i}.log"
                )
            )
            procs.append(nodes[-1])
        for _, metrics in ports:
            _nodes.wait_healthy(metrics)
        hap = _nodes.start(
            [haproxy, "-db", "-f", str(haproxy_config(work / "haproxy.cfg", front, ports))],
            work / "haproxy.log",
        )
        procs.append(hap)
        _nodes.wait_port(front)
        time.sleep(2.5)  # both servers UP after `rise 2`
        load_json = work / "load.json"
        started = time.monotonic()
        load = _nodes.start(
            [*_nodes.FORECOURT, "sim", "load", "--switch", f"127.0.0.1:{front}",
             "--terminals", str(args.terminals), "--concurrency", str(args.terminals),
             "--duration", str(args.duration), "--timeout", "5", "--mac", "store",
             "--data-dir", str(data_dir), "--database", dsn, "--reconnect", "--quiet",
             "--json", str(load_json)],
            work / "load.log",
        )  # fmt: skip
        procs.append(load)
        time.sleep(args.kill_at)
        nodes[0].send_signal(signal.SIGKILL)
        killed_at = time.time()
        nodes[0].wait()
        load.wait(args.duration + 60)
        load_report = json.loads(load_json.read_text())
        # settle: node 2 takes over node 1's forwarded rows (request timeout + lease)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = journal_rows(dsn)
            stuck = [r for r in rows if r["state"] in ("forwarded", "received", "reversal_pending")]
            if not stuck and saf_open(dsn) == 0:
                break
            time.sleep(0.5)
        settle_s = time.monotonic() - started - args.duration
        _nodes.stop(load)
        _nodes.stop(hap)
        _nodes.stop(nodes[1])
        _nodes.stop(acq)
        rows = journal_rows(dsn)
        host = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        report = analyse(rows, host, killed_at, load_report)
        report["settle_after_load_s"] = round(settle_s, 1)
        print(json.dumps(report, indent=2))
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report.get("ok") else 1


def analyse(
    rows: list[dict[str, Any]],
    host: list[dict[str, Any]],
    killed_at: float,
    load: dict[str, Any],
) -> dict[str, Any]:
    purchases = [r for r in rows if r["mti_class"] == "2"]
    states = Counter(r["state"] for r in purchases)
    by_node = Counter(r["node"] for r in purchases)
    after_kill = [r for r in purchases if r["received_at"] > killed_at + 1.0]
    approvals = [
        h for h in host if h["mti"] == "1200" and h["action_code"] == "000"
        and h["delivery"] == "answer"
    ]  # fmt: skip
    reversals_acked = [h for h in host if (h["mti"] or "")[:3] == "142" and h["action_code"]]
    # a host approval -> the journal row that carried it (terminal, link STAN, amount)
    index: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in purchases:
        if r["acquirer_stan"]:
            index[(r["terminal_id"], r["acquirer_stan"], int(r["amount"] or 0))].append(r)
    lost, unmatched, ambiguous = [], 0, 0
    charged: Counter[tuple[str, str]] = Counter()
    for h in approvals:
        found = index.get((h["terminal_id"], h["stan"], int(h["amount"] or 0)), [])
        if not found:
            unmatched += 1
            continue
        if len(found) > 1:
            ambiguous += 1
        row = found[0]
        if row["state"] == "approved":
            charged[(row["terminal_id"], row["stan"])] += 1
        elif row["state"] != "reversed":
            lost.append(row["txn_id"])
    twice = [k for k, n in charged.items() if n > 1]
    open_states = ("forwarded", "received", "reversal_pending")
    stuck = [r["txn_id"] for r in purchases if r["state"] in open_states]
    approved_keys = Counter(
        (r["terminal_id"], r["stan"]) for r in purchases if r["state"] == "approved"
    )
    twice += [k for k, n in approved_keys.items() if n > 1]
    checks = {
        "terminals_carried_on_after_kill": len(after_kill) > 0 and by_node.get("node2", 0) > 0,
        "nothing_stuck": not stuck,
        "every_host_approval_answered_or_reversed": not lost and unmatched == 0,
        "nothing_charged_twice": not twice,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "journal_states": dict(states),
        "by_node": dict(by_node),
        "requests_after_kill": len(after_kill),
        "host_approvals": len(approvals),
        "host_reversals_answered": len(reversals_acked),
        "unmatched_host_approvals": unmatched,
        "ambiguous_matches": ambiguous,
        "lost": lost[:10],
        "stuck": stuck[:10],
        "load": {
            k: load.get(k)
            for k in (
                "sent",
                "answered",
                "throughput_per_s",
                "timeouts",
                "errors",
                "reconnects",
                "by_action_code",
            )
        },
    }


if __name__ == "__main__":
    sys.exit(main())
