"""Benchmark 7: soak at 60 % of the maximum, with timeouts and reversals in the mix.

``--minutes`` (default 30) of open-loop load through the switch at 60 % of B's
maximum (measured with a short closed-loop probe, or ``--rate``). The mix
(``forecourt sim load --mix``): purchases of varying amounts, pre-authorisations,
echoes, purchases the host never answers (``drop``), purchases it answers after the
switch gave up (``late``), and terminal reversals of approved purchases (a pump
fault: 1420, reason 4021, naming the purchase in field 56). The switch adds its own:
each timeout makes the parked reversal due (reason 4021), and approved
pre-authorisations that are never completed are reversed by SAF at the end of
``--preauth-window`` seconds.

During the run the switch's RSS and the SAF table (by state; parked reversals
counted apart) are sampled every 10 s. After the load: drain (wait until no
transaction is ``forwarded`` / ``reversal_pending`` and SAF has nothing due or in
flight), then the invariant check from the journal (sqlite) and the acquirer
simulator's record file (``[record] file``, JSON lines):

- every host approval of a request has a journalled answer (state approved,
  answer bytes kept) or a reversal the host received (state reversed is set only
  when the host acknowledged the reversal);
- nothing is left forwarded / reversal_pending, no SAF item is due, in flight or
  flagged;
- RSS growth from the first sample to the last ≤ 5 %; reported as well from once
  the bounded windows are full (``--hold-approved`` + 2 min), where a leak would show.

``--probe-mix`` measures the maximum with the soak's own mix instead of purchases
only: timeouts, late answers, pre-authorisations and SAF reversals cost the switch
more than a purchase, so 60 % of B's maximum is not 60 % of the mix's.

Prints one JSON object.

    .venv/bin/python bench/switch_soak.py --minutes 30
"""

from __future__ import annotations

import argparse
import collections
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _harness as h

DROP_PAN = "4000000000000002"
LATE_PAN = "4000000000000010"
PARKED_HORIZON_S = 5 * 365 * 86400.0  # forecourt.switch.journal.model.PARKED_HORIZON_S

MIX = f"""
[[mix]]
template = "purchase"
weight = 82
amount = [500, 12000]
[[mix]]
template = "preauth"
weight = 6
amount = 10000
[[mix]]
template = "echo"
weight = 6
[[mix]]
template = "reversal"
weight = 2
[[mix]]
template = "purchase"
weight = 2
pan = "{DROP_PAN}"
[[mix]]
template = "purchase"
weight = 2
pan = "{LATE_PAN}"
"""


def _rules(late_s: float) -> str:
    return f"""
[[rules]]
name = "issuer unreachable"
pan_prefix = "{DROP_PAN}"
action = "drop"
[[rules]]
name = "answers after the switch gave up"
pan_prefix = "{LATE_PAN}"
action = "late"
delay_s = {late_s}
[[rules]]
name = "everything else approved"
action = "approve"
"""


def _rss_split(pid: int) -> dict[str, float]:
    """RSS by kind (/proc/PID/status): heap and other anonymous memory apart from
    mapped files (SQLite's WAL index, libraries) and shared memory."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            out[key.lower().replace("rss", "rss_") + "_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def _saf_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        horizon = time.time() + PARKED_HORIZON_S
        rows = conn.execute(
            "SELECT CASE WHEN state = 'pending' AND next_attempt_at > ? THEN 'parked' "
            "ELSE state END, count(*) FROM saf GROUP BY 1",
            (horizon,),
        ).fetchall()
        counts = {str(k): int(v) for k, v in rows}
        total = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        counts["transactions"] = int(total)
        return counts
    finally:
        conn.close()


def _open_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        horizon = time.time() + PARKED_HORIZON_S
        states = dict(
            conn.execute(
                "SELECT state, count(*) FROM transactions "
                "WHERE state IN ('received', 'forwarded', 'reversal_pending') GROUP BY state"
            ).fetchall()
        )
        due = conn.execute(
            "SELECT count(*) FROM saf WHERE state = 'in_flight' "
            "OR (state = 'pending' AND next_attempt_at <= ?)",
            (horizon,),
        ).fetchone()[0]
        flagged = conn.execute("SELECT count(*) FROM saf WHERE state = 'flagged'").fetchone()[0]
        return {**{str(k): int(v) for k, v in states.items()}, "saf_due_or_in_flight": int(due)} | {
            "saf_flagged": int(flagged)
        }
    finally:
        conn.close()


def _invariant(db: Path, record_file: Path) -> dict[str, Any]:
    from forecourt.codecs.action_codes import is_approved

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows: dict[tuple[str, str], list[tuple[str, bool, float]]] = collections.defaultdict(list)
        for terminal_id, stan, state, has_answer, forwarded_at in conn.execute(
            "SELECT terminal_id, acquirer_stan, state, response_raw IS NOT NULL, forwarded_at "
            "FROM transactions WHERE acquirer_stan IS NOT NULL"
        ):
            rows[(terminal_id.strip(), stan)].append((state, bool(has_answer), forwarded_at or 0))
        states = dict(conn.execute("SELECT state, count(*) FROM transactions GROUP BY state"))
        reversed_rows = states.get("reversed", 0)
    finally:
        conn.close()
    approvals = answered = reversed_ = 0
    violations: list[dict[str, Any]] = []
    host_reversals = 0
    by_mti: collections.Counter[str] = collections.Counter()
    by_delivery: collections.Counter[str] = collections.Counter()
    for line in record_file.read_text().splitlines():
        rec = json.loads(line)
        mti = rec.get("mti") or "?"
        by_mti[mti] += 1
        by_delivery[rec.get("delivery") or "?"] += 1
        code = rec.get("action_code")
        if mti in ("1420", "1421") and code == "400":
            host_reversals += 1
        if mti not in ("1100", "1200") or not code or not is_approved(code, "1993"):
            continue
        approvals += 1
        candidates = rows.get(((rec.get("terminal_id") or "").strip(), rec.get("stan") or ""), [])
        # the journal row forwarded closest before the host saw it (STANs are reused
        # only after the quarantine; nearest in time is the right one)
        best = min(candidates, key=lambda c: abs(rec["time"] - c[2]), default=None)
        if best is not None and best[0] == "approved" and best[1]:
            answered += 1
        elif best is not None and best[0] == "reversed":
            reversed_ += 1
        else:
            violations.append({"record": rec, "journal": best})
    return {
        "host_approvals": approvals,
        "with_journalled_answer": answered,
        "with_host_received_reversal": reversed_,
        "violations": len(violations),
        "violation_examples": violations[:5],
        "host_reversals_received_400": host_reversals,
        "journal_reversed_rows": reversed_rows,
        "reversed_rows_le_host_reversals": reversed_rows <= host_reversals,
        "host_records_by_mti": dict(sorted(by_mti.items())),
        "host_records_by_delivery": dict(sorted(by_delivery.items())),
        "journal_states": dict(sorted(states.items())),
    }


def _gc_pauses(text: str) -> dict[str, dict[str, float]]:
    """Collections by generation from the switch's own histogram: count, seconds, max bucket."""
    out: dict[str, dict[str, float]] = {}
    for generation in ("0", "1", "2"):
        labels = f'{{generation="{generation}"}}'
        count = sum_s = 0.0
        for line in text.splitlines():
            if line.startswith(f"forecourt_gc_pause_seconds_count{labels}"):
                count = float(line.split()[-1])
            elif line.startswith(f"forecourt_gc_pause_seconds_sum{labels}"):
                sum_s = float(line.split()[-1])
        out[generation] = {
            "count": count,
            "seconds": round(sum_s, 2),
            "mean_ms": round(sum_s / count * 1000, 2) if count else 0.0,
        }
    return out


def _heap_growth(heap_dir: Path, full_from_s: float, load_s: float) -> dict[str, Any]:
    """The switch's heap once the windows are full: in use, or kept by the allocator.

    The launcher's clock starts with the switch process, a few seconds before the load.
    """
    dumps = [json.loads(p.read_text()) for p in sorted(heap_dir.glob("heap-*.json"))]
    series = [{k: v for k, v in d.items() if k != "lineno"} for d in dumps]
    during = [d for d in dumps if full_from_s <= d["t_s"] <= load_s + 5]
    if len(during) < 2:
        return {"series": series, "growth": None}
    first, last = during[0], during[-1]
    fields = [k for k, v in first.items() if isinstance(v, (int, float)) and k != "record_s"]
    growth: dict[str, Any] = {
        "from_s": first["t_s"],
        "to_s": last["t_s"],
        "change": {k: round(last[k] - first[k], 2) for k in fields if k != "t_s"},
    }
    if "lineno" in first:
        rows = []
        for site in set(first["lineno"]) | set(last["lineno"]):
            size0, count0 = first["lineno"].get(site, [0, 0])
            size1, count1 = last["lineno"].get(site, [0, 0])
            rows.append(
                {
                    "site": site,
                    "kb": round((size1 - size0) / 1024, 1),
                    "blocks": count1 - count0,
                    "kb_at_end": round(size1 / 1024, 1),
                }
            )
        rows.sort(key=lambda r: -abs(r["kb"]))
        growth["by_line"] = rows[:20]
    return {"series": series, "growth": growth}


def _log_summary(path: Path) -> dict[str, Any]:
    levels: collections.Counter[str] = collections.Counter()
    events: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            levels["not_json"] += 1
            continue
        levels[str(entry.get("level"))] += 1
        events[f"{entry.get('level')}:{entry.get('event')}"] += 1
    return {"by_level": dict(levels), "top_events": dict(events.most_common(12))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, help="offered rate (default: 60 %% of a probe)")
    parser.add_argument("--share", type=float, default=0.6, help="of the maximum")
    parser.add_argument(
        "--probe-mix",
        action="store_true",
        help="probe the maximum with the soak's mix (default: purchases only, B's maximum)",
    )
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--request-timeout", type=float, default=2.0, help="switch -> host")
    parser.add_argument("--late", type=float, default=3.0, help="late answers after (s)")
    parser.add_argument("--preauth-window", type=float, default=60.0)
    parser.add_argument("--hold-approved", type=float, default=900.0, help="[reversal] (s)")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--duplicate-window", type=int, default=200_000, help="[journal] (answers kept)"
    )
    parser.add_argument(
        "--heap",
        choices=["malloc", "trim", "young", "trace"],
        help="watch the switch's heap (bench/_heap_launcher.py); trace is slow",
    )
    parser.add_argument("--heap-every", type=float, default=30.0, help="seconds")
    args = parser.parse_args()
    h.raise_nofile()
    with tempfile.TemporaryDirectory(prefix="fc-soak-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        db = data_dir / "journal.db"
        record_file = work / "host-received.jsonl"
        mix = work / "mix.toml"
        mix.write_text(MIX)
        zak = h.prepare_keys(data_dir, h.terminal_ids(args.terminals))
        acquirer, acquirer_port = h.start_acquirer(
            work, zak, _rules(args.late), record_file=record_file
        )
        with h.stopping(acquirer):
            switch, port, metrics = h.start_switch(
                work,
                data_dir,
                acquirer_port,
                max_in_flight=32,
                request_timeout_s=args.request_timeout,
                duplicate_window=args.duplicate_window,
                heap_probe=None
                if args.heap is None
                else (work / "heap", args.heap_every, args.heap),
                extra_toml=(
                    f"[reversal]\npreauth_completion_window_s = {args.preauth_window}\n"
                    f"hold_approved_s = {args.hold_approved}\n"
                ),
            )
            with h.stopping(switch):
                result = _soak(args, work, data_dir, db, record_file, mix, switch, port, metrics)
        result["switch_log"] = _log_summary(work / "switch.log")
        if args.heap is not None:
            result["heap"] = _heap_growth(work / "heap", args.hold_approved + 120, result["load_s"])
    result["machine"] = h.machine()
    h.emit(result)
    return 0


def _soak(
    args: argparse.Namespace,
    work: Path,
    data_dir: Path,
    db: Path,
    record_file: Path,
    mix: Path,
    switch: h.Proc,
    port: int,
    metrics_port: int,
) -> dict[str, Any]:
    mac = {"mac": "store", "data-dir": str(data_dir)}
    maximum = None
    rate = args.rate
    if rate is None:
        probe = h.run_load(
            work,
            port,
            terminals=args.terminals,
            concurrency=200,
            duration=8,
            mac=mac,
            mix=mix if args.probe_mix else None,
            tag="probe",
        )
        maximum = float(probe["throughput_per_s"])
        rate = round(maximum * args.share, 1)
    duration = args.minutes * 60.0
    samples: list[dict[str, Any]] = []
    outcome: dict[str, Any] = {}

    def load() -> None:
        outcome["load"] = h.run_load(
            work,
            port,
            terminals=args.terminals,
            rate=rate,
            duration=duration,
            mac=mac,
            mix=mix,
            timeout=10.0,
            tag="soak",
        )

    thread = threading.Thread(target=load)
    started = time.monotonic()
    cpu0 = switch.cpu()
    thread.start()
    next_sample = started
    while thread.is_alive():
        now = time.monotonic()
        if now >= next_sample:
            samples.append(
                {"t_s": round(now - started), "rss_mb": switch.rss_mb()}
                | _rss_split(switch.pid)
                | _saf_counts(db)
            )
            next_sample += 10.0
        thread.join(timeout=max(0.0, min(1.0, next_sample - time.monotonic())))
    cpu = switch.cpu() - cpu0
    load_s = time.monotonic() - started
    gc_pauses = _gc_pauses(h.scrape(metrics_port))
    rss_end_of_load = switch.rss_mb()
    # drain: nothing in flight, every due reversal delivered
    drain_started = time.monotonic()
    left: dict[str, int] = {}
    while time.monotonic() - drain_started < args.drain_timeout:
        left = _open_counts(db)
        if not any(v for k, v in left.items() if k != "saf_flagged"):
            break
        time.sleep(1.0)
    drain_s = time.monotonic() - drain_started
    time.sleep(1.0)  # the simulator writes its records every 0.2 s
    final_samples = _saf_counts(db)
    invariant = _invariant(db, record_file)
    data = outcome["load"]
    rss_first, rss_last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    growth = round((rss_last - rss_first) / rss_first * 100, 2) if rss_first else None
    steady = [s for s in samples if s["t_s"] >= min(120, duration / 2)]
    steady_growth = None
    if len(steady) >= 2 and steady[0]["rss_mb"]:
        steady_growth = round(
            (steady[-1]["rss_mb"] - steady[0]["rss_mb"]) / steady[0]["rss_mb"] * 100, 2
        )
    # RSS once both bounded windows are full (the hold window fills in hold_approved_s,
    # the 200,000-answer duplicate window sooner at these rates): growth from then on
    # is what a leak would show
    full = [s for s in samples if s["t_s"] >= args.hold_approved + 120]
    full_growth = None
    if len(full) >= 2 and full[0]["rss_mb"]:
        full_growth = round((full[-1]["rss_mb"] - full[0]["rss_mb"]) / full[0]["rss_mb"] * 100, 2)
    nothing_left = not any(left.values())
    return {
        "benchmark": "soak",
        "minutes": args.minutes,
        "b_max_per_s": maximum,
        "probed_with": None if maximum is None else ("mix" if args.probe_mix else "purchases"),
        "offered_per_s": rate,
        "achieved_per_s": data["throughput_per_s"],
        "load_s": round(load_s, 1),
        "sent": data["sent"],
        "answered": data["answered"],
        "by_action_code": data["by_action_code"],
        "client_latency_ms": data["latency_ms"],
        "client_timeouts": data["timeouts"],
        "client_errors": data["errors"],
        "client_unmatched": data["unmatched"],
        "connections_failed": data["connections_failed"],
        "switch_cpu_share_of_core": round(cpu / load_s, 2),
        "gc_pauses_during_load": gc_pauses,
        "settings": {
            "request_timeout_s": args.request_timeout,
            "late_s": args.late,
            "preauth_window_s": args.preauth_window,
            "hold_approved_s": args.hold_approved,
        },
        "rss_mb": {
            "first_sample": rss_first,
            "last_sample": rss_last,
            "end_of_load": rss_end_of_load,
            "after_drain": switch.rss_mb(),
            "growth_pct": growth,
            "growth_pct_after_2_min": steady_growth,
            "growth_pct_windows_full": full_growth,
            "windows_full_from_s": full[0]["t_s"] if full else None,
        },
        "drain_s": round(drain_s, 1),
        "left_after_drain": left,
        "saf_after_drain": final_samples,
        "invariant": invariant,
        "checks": {
            "every_host_approval_answered_or_reversed": invariant["violations"] == 0,
            "nothing_left_after_drain": nothing_left,
            "rss_growth_le_5pct": growth is not None and growth <= 5.0,
            "rss_growth_le_5pct_windows_full": None if full_growth is None else full_growth <= 5.0,
        },
        "samples": samples,
    }


if __name__ == "__main__":
    sys.exit(main())
