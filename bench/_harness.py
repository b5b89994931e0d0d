"""Shared set-up of the switch benchmarks: keys, configs and three separate processes.

The load generator, the switch and the acquirer simulator each run in their own
process (`forecourt sim load`, `forecourt serve`, `forecourt sim acquirer`): on a
2-core machine, one process would put all three on one core and measure nothing
useful. Nothing here is a test; every benchmark script prints one JSON object.

Keys: a fresh key store per run (temporary directory) holds the load terminals
(TDES TAKs, retail MAC) and the acquirer link `bank` (ZMK from two fixed test
components, ZAK v1). The clear ZAK is unwrapped from the payload `add_acquirer`
returns, exactly as the host would install it, and given to the acquirer
simulator as `[mac] zak`.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
FORECOURT = [sys.executable, "-m", "forecourt.switch.cli"]
TEST_ZMK_1 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_ZMK_2 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/PID/stat (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def raise_nofile(limit: int = 65536) -> None:
    """Raise RLIMIT_NOFILE (soft up to the hard limit); used in every child process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(limit, hard) if hard != resource.RLIM_INFINITY else limit
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def terminal_ids(n: int, prefix: str = "L", first: int = 1) -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(first, first + n)]


def prepare_keys(data_dir: Path, terminals: Sequence[str]) -> bytes:
    """Key store with the terminals and the acquirer link `bank`; returns the clear ZAK."""
    from forecourt.keys.crypto import adjust_parity, xor
    from forecourt.keys.exchange import install_key_change
    from forecourt.keys.model import KeyType
    from forecourt.keys.store import KeyStore

    # the LMK beside the data directory, not in it; the store remembers where
    KeyStore.init(data_dir, lmk_file=data_dir.parent / f"{data_dir.name}-lmk.key").close()
    store = KeyStore.open(data_dir)
    try:
        for terminal_id in terminals:
            store.add_terminal(terminal_id, actor="bench")
        info = store.add_acquirer("bank", (TEST_ZMK_1, TEST_ZMK_2), actor="bench")
    finally:
        store.close()
    zmk = adjust_parity(xor(TEST_ZMK_1, TEST_ZMK_2))
    return install_key_change(zmk, info.payload).get(KeyType.ZAK).key


def switch_toml(
    data_dir: Path,
    port: int,
    acquirer_port: int,
    metrics_port: int,
    *,
    synchronous: str = "full",
    max_in_flight: int = 8,
    link_in_flight: int = 4000,
    request_timeout_s: float = 10.0,
    max_connections: int = 1000,
    log_level: str = "warning",
    connections: int = 2,
    duplicate_window: int = 200_000,
    extra_toml: str = "",
) -> str:
    """The switch configuration; `extra_toml` is appended (more listeners, groups, tables)."""
    return f"""
node = "bench"
data_dir = "{data_dir}"
default_route = "bank"
[metrics]
host = "127.0.0.1"
port = {metrics_port}
[logging]
level = "{log_level}"
format = "json"
[journal]
synchronous = "{synchronous}"
duplicate_window = {duplicate_window}
[[listeners]]
name = "ifsf"
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
max_connections = {max_connections}
idle_timeout_s = 600.0
terminal_group = "bench"
[[terminal_groups]]
name = "bench"
terminals = "registry"
mac_required = true
max_in_flight = {max_in_flight}
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = {acquirer_port}
dialect = "ifsf"
mac = true
connections = {connections}
max_in_flight = {link_in_flight}
request_timeout_s = {request_timeout_s}
echo_interval_s = 0.0
sign_on = true
acquirer_id = "12345678"
{extra_toml}
"""


def acquirer_toml(
    port: int, zak: bytes | None, rules: str = "", record_file: Path | None = None
) -> str:
    mac = f'[mac]\nzak = "{zak.hex().upper()}"\nalgorithm = "retail"\n' if zak else ""
    record = f'file = "{record_file}"\n' if record_file is not None else ""
    return f"""
seed = 1
[listen]
host = "127.0.0.1"
port = {port}
dialect = "ifsf"
framing = "2b"
{mac}
[record]
{record}keep = 1000
{rules}
"""


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wait_link_up(metrics_port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            text = scrape(metrics_port)
            for line in text.splitlines():
                if line.startswith("forecourt_acquirer_link_connections{") and not line.endswith(
                    " 0.0"
                ):
                    return
        time.sleep(0.1)
    raise RuntimeError("the acquirer link did not come up")


def scrape(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """Cumulative buckets [(le, count)], sum and count of an unlabelled histogram."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
        elif line.startswith(f"{name}_sum "):
            total = float(line.split()[-1])
        elif line.startswith(f"{name}_count "):
            count = float(line.split()[-1])
    return buckets, total, count


def histogram_delta(
    after: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    old = dict(before)
    return [(le, n - old.get(le, 0.0)) for le, n in after]


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            if n == prev_n:
                return le
            return prev_le + (le - prev_le) * (rank - prev_n) / (n - prev_n)
        prev_le, prev_n = le, n
    return None


class Proc:
    """A child process with its CPU and RSS readings."""

    def __init__(self, name: str, args: Sequence[str], log: Path) -> None:
        self.name = name
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            list(args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=raise_nofile,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def start_acquirer(
    work: Path,
    zak: bytes | None,
    rules: str = "",
    name: str = "acq",
    record_file: Path | None = None,
) -> tuple[Proc, int]:
    port = free_port()
    config = work / f"{name}.toml"
    config.write_text(acquirer_toml(port, zak, rules, record_file))
    proc = Proc(
        name, [*FORECOURT, "sim", "acquirer", "--config", str(config)], work / f"{name}.log"
    )
    wait_port(port)
    return proc, port


def start_switch(
    work: Path,
    data_dir: Path,
    acquirer_port: int,
    start_timeout: float = 20.0,
    heap_probe: tuple[Path, float, str] | None = None,
    **options: Any,
) -> tuple[Proc, int, int]:
    """The switch process, once its first listener and the acquirer link are up.

    `heap_probe` (directory, seconds, mode) runs it under `_heap_launcher.py`."""
    port, metrics_port = free_port(), free_port()
    config = work / "switch.toml"
    config.write_text(switch_toml(data_dir, port, acquirer_port, metrics_port, **options))
    command = [*FORECOURT, "serve", "--config", str(config)]
    if heap_probe is not None:
        launcher = str(Path(__file__).with_name("_heap_launcher.py"))
        probe_dir, every_s, mode = heap_probe
        command = [sys.executable, launcher, str(probe_dir), str(every_s), mode, "--", *command[3:]]
    proc = Proc("switch", command, work / "switch.log")
    try:
        wait_port(port, start_timeout)
        wait_link_up(metrics_port, start_timeout)
    except RuntimeError:
        proc.stop()
        raise
    return proc, port, metrics_port


def run_load(
    work: Path,
    port: int,
    *,
    terminals: int,
    duration: float,
    concurrency: int | None = None,
    rate: float | None = None,
    mac: dict[str, str] | None = None,
    processes: int = 1,
    timeout: float = 10.0,
    mix: Path | None = None,
    first_terminal: int = 1,
    tag: str = "load",
) -> dict[str, Any]:
    """One `forecourt sim load` run in its own process(es); returns its JSON report + CPU."""
    report = work / f"{tag}.json"
    args = [
        *FORECOURT,
        "sim",
        "load",
        "--switch",
        f"127.0.0.1:{port}",
        "--terminals",
        str(terminals),
        "--first-terminal",
        str(first_terminal),
        "--duration",
        str(duration),
        "--processes",
        str(processes),
        "--timeout",
        str(timeout),
        "--quiet",
        "--json",
        str(report),
    ]
    args += ["--concurrency", str(concurrency)] if rate is None else ["--rate", str(rate)]
    if mix is not None:
        args += ["--mix", str(mix)]
    for key, value in (mac or {}).items():
        args += [f"--{key}", value] if value else [f"--{key}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, preexec_fn=raise_nofile)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data: dict[str, Any] = json.loads(report.read_text())
    data["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return data


@contextlib.contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0]}


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj))


class Rig(NamedTuple):
    """What every switch benchmark starts from."""

    work: Path
    data_dir: Path
    zak: bytes
    acquirer_port: int
    acquirer_pid: int


@contextlib.contextmanager
def acquirer_rig(terminals: int, rules: str = "") -> Iterator[Rig]:
    """A temporary work directory, a key store with `terminals` load terminals, and
    the acquirer simulator running (with `rules`) until the block ends."""
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        zak = prepare_keys(data_dir, terminal_ids(terminals))
        acquirer, acquirer_port = start_acquirer(work, zak, rules)
        with stopping(acquirer):
            yield Rig(work, data_dir, zak, acquirer_port, acquirer.pid)
