"""`forecourt sim acquirer|terminal|load`: the simulators from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from ._toml import SimConfigError
from .hsm_cli import add_hsm_parser
from .load_console import ProgressBar, nothing_approved, print_report
from .wallet_cli import add_wallet_parser

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    sim = subparsers.add_parser("sim", help="simulators: acquirer, terminal, load, HSM")
    kinds = sim.add_subparsers(dest="sim_command", required=True)

    acquirer = kinds.add_parser(
        "acquirer",
        help="run the acquirer host simulator",
        epilog="example: forecourt sim acquirer --config conf/sim/acquirer.toml"
        " --keys bank-test-keys.toml",
    )
    acquirer.add_argument("--config", required=True, type=Path, help="host TOML (conf/sim/)")
    acquirer.add_argument("--port", type=int, help="override listen.port")
    acquirer.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="the link's clear ZAK/ZPK from `forecourt keys export-test-keys` (test only)",
    )
    acquirer.add_argument("--tls-cert", type=Path, help="serve TLS: certificate chain (PEM)")
    acquirer.add_argument("--tls-key", type=Path, help="serve TLS: its private key (PEM)")
    acquirer.add_argument(
        "--client-ca", type=Path, help="require client certificates from this CA (mutual TLS)"
    )
    acquirer.add_argument(
        "--settlement-file",
        type=Path,
        help="on stopping, write what was settled here (CSV, docs/reconciliation.md)",
    )
    acquirer.set_defaults(func=_acquirer)

    add_wallet_parser(kinds)
    add_hsm_parser(kinds)

    terminal = kinds.add_parser(
        "terminal",
        help="run a certification script",
        epilog="example: forecourt sim terminal --script conf/cert/01-ifsf-indoor.toml"
        " --script conf/cert/04-iso87.toml --junit cert.xml",
    )
    terminal.add_argument(
        "--script",
        required=True,
        type=Path,
        action="append",
        help="script TOML (repeat for several)",
    )
    terminal.add_argument("--switch", help="HOST:PORT (default: terminal.switch in the script)")
    terminal.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    terminal.add_argument(
        "--acquirer-record",
        type=Path,
        help="the acquirer simulator's record file, for expect_at_acquirer steps",
    )
    terminal.set_defaults(func=_terminal)

    load = kinds.add_parser(
        "load",
        help="drive many terminals at a switch or host",
        epilog="example: forecourt sim load --switch 127.0.0.1:9000 --terminals 20"
        " --duration 30 --mac store --data-dir /var/lib/forecourt --provision",
    )
    load.add_argument("--switch", required=True, help="HOST:PORT")
    load.add_argument("--terminals", type=int, default=10, help="terminals, one connection each")
    pace = load.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="requests per second in total (open loop)")
    pace.add_argument("--concurrency", type=int, help="requests outstanding in total (closed loop)")
    load.add_argument("--duration", type=float, default=10.0, help="seconds")
    load.add_argument("--mix", type=Path, help="mix TOML ([[mix]] template, weight, pan, amount)")
    load.add_argument("--json", type=Path, help="write the report as JSON here")
    load.add_argument(
        "--dialect",
        default="ifsf",
        choices=("ifsf", "iso87ascii", "iso87bcd"),
        help="the listener's dialect (ifsf)",
    )
    load.add_argument(
        "--bitmap", default="binary", choices=("binary", "hex"), help="bitmap encoding (binary)"
    )
    load.add_argument(
        "--framing", default="2b", choices=("2b", "4a"), help="length header: 2b or 4a (2b)"
    )
    load.add_argument(
        "--ledger-card",
        action="append",
        default=[],
        help="a fleet or consumer card of the switch's ledger to mix in (repeatable; test PANs)",
    )
    load.add_argument(
        "--ledger-weight", type=float, default=1.0, help="weight of ledger purchases in the mix"
    )
    load.add_argument("--tpdu", action="store_true", help="send a TPDU after the length")
    load.add_argument("--timeout", type=float, default=10.0, help="seconds before a timeout")
    load.add_argument("--terminal-prefix", default="L", help="terminal ids are PREFIX000001...")
    load.add_argument(
        "--first-terminal", type=int, default=1, help="number of the first terminal id (1)"
    )
    load.add_argument(
        "--mac",
        choices=("none", "key", "keys", "store"),
        default="none",
        help="none; key: one clear --mac-key for all; keys: each its own from --mac-keys;"
        " store: TAKs from --data-dir",
    )
    load.add_argument("--mac-key", help="clear hex key for --mac key (test only)")
    load.add_argument("--mac-keys", type=Path, help="JSON {terminal: hex TAK} (test only)")
    load.add_argument(
        "--mac-algorithm",
        choices=("retail", "cmac"),
        default="retail",
        help="with --mac key: retail (TDES) or cmac (AES)",
    )
    load.add_argument("--data-dir", type=Path, help="switch data directory (key store)")
    load.add_argument("--lmk-file", type=Path, help="LMK file (default: the one `keys init` wrote)")
    load.add_argument(
        "--allow-lmk-in-data-dir",
        action="store_true",
        help="accept an LMK file inside --data-dir (demos and benchmarks only)",
    )
    load.add_argument("--database", help="key store in PostgreSQL (the switch's `database`)")
    load.add_argument(
        "--provision",
        action="store_true",
        help="register load terminals missing from the key store",
    )
    load.add_argument("--processes", type=int, default=1, help="worker processes")
    load.add_argument("--quiet", action="store_true", help="no live progress")
    load.add_argument("--seed", type=int, help="random seed, for a run that repeats exactly")
    load.add_argument(
        "--allow-no-approvals",
        action="store_true",
        help="exit 0 even when no request was approved (a test of declines)",
    )
    load.add_argument(
        "--reconnect",
        action="store_true",
        help="reconnect when the switch closes a connection mid-run (failover tests)",
    )
    load.set_defaults(func=_load)


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"forecourt sim: {message}\n")
    return code


# -- acquirer ------------------------------------------------------------------------------


def _acquirer(args: argparse.Namespace) -> int:
    import attrs

    from .acquirer import AcquirerSimulator, load_acquirer_config
    from .acquirer_tls import HostTls

    try:
        config = load_acquirer_config(args.config, args.keys)
    except SimConfigError as exc:
        return _fail(str(exc))
    if args.port is not None:
        config = attrs.evolve(config, port=args.port)
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        return _fail("--client-ca needs --tls-cert and --tls-key")
    if args.tls_cert is not None:
        config = attrs.evolve(
            config,
            tls=HostTls(
                args.tls_cert,
                args.tls_key,
                args.client_ca,
                config.tls.max_version if config.tls is not None else None,
            ),
        )
    try:
        sim = AcquirerSimulator(config)
    except SimConfigError as exc:
        return _fail(str(exc))
    security = (
        "clear"
        if config.tls is None
        else ("mutual TLS" if config.tls.client_ca is not None else "TLS")
    )

    async def main() -> None:
        """Serve until SIGINT (Ctrl-C) or SIGTERM, then report what was received."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(sim.run)
                sys.stderr.write(
                    f"acquirer simulator on {config.host}:{port} "
                    f"({config.wire.dialect.name}, {config.wire.framing.header}, "
                    f"{len(config.rules)} rules, {security}, "
                    f"MAC {'on' if config.zak is not None else 'off'})\n"
                )
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except OSError as exc:
        return _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}", 1)
    mtis = ", ".join(f"{k}: {v}" for k, v in sorted(sim.counts_by_mti().items())) or "none"
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(sim.counts_by_action_code().items()))
    sys.stderr.write(
        f"acquirer simulator stopped: {sim.total} messages received ({mtis});"
        f" answered {codes or 'none'}; {sim.connections_accepted} connections\n"
    )
    if args.settlement_file is not None:
        try:
            lines = sim.settlement.write(args.settlement_file)
        except OSError as exc:
            return _fail(f"--settlement-file {args.settlement_file}: {exc.strerror or exc}", 1)
        sys.stderr.write(f"settlement file {args.settlement_file}: {lines} settlements\n")
    return 0


# -- terminal -------------------------------------------------------------------------------


def _terminal(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .script import load_script
    from .terminal import CaseResult, run_script, write_junit

    try:
        scripts = [load_script(p) for p in args.script]
    except SimConfigError as exc:
        return _fail(str(exc))

    results: list[tuple[str, CaseResult]] = []

    async def main() -> bool:
        """True when every script ran to its end; False when a signal stopped it."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                for script in scripts:
                    total = len(script.cases)
                    _progress(f"{script.name}: {total} cases")

                    def heard(r: CaseResult, name: str = script.name, total: int = total) -> None:
                        results.append((name, r))
                        done = sum(1 for n, _ in results if n == name)
                        verdict = "pass" if r.passed else f"FAIL: {r.reason}"
                        _progress(f"  [{done}/{total}] {r.name}: {verdict} ({r.seconds:.2f} s)")

                    await run_script(script, args.switch, args.acquirer_record, on_case=heard)
                nursery.cancel_scope.cancel()
                return True
        return False

    try:
        finished = trio.run(main)
    except ValueError as exc:
        return _fail(str(exc))
    console = Console()
    table = Table(title="certification")
    for column in ("script", "case", "result", "time", "reason"):
        table.add_column(column)
    for name, r in results:
        verdict = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(name, r.name, verdict, f"{r.seconds * 1000:.0f} ms", r.reason or "")
    console.print(table)
    passed = sum(1 for _, r in results if r.passed)
    console.print(f"{passed}/{len(results)} cases passed")
    if args.junit is not None:
        suite = ",".join(s.name for s in scripts)
        write_junit([r for _, r in results], args.junit, suite)
    if not finished:
        expected = sum(len(s.cases) for s in scripts)
        return _fail(f"interrupted after {len(results)} of {expected} cases", 130)
    return 0 if results and passed == len(results) else 1


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# -- load ----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> int:
    from forecourt.codecs.action_codes import is_approved

    from .load import LoadOptions, MixEntry, load_mix, run_load_until_signal
    from .load_options import with_ledger_cards
    from .load_processes import run_load_processes
    from .loadkeys import LoadKeyError, macs_for
    from .terminal import parse_address
    from .wire import wire_format

    try:
        host, port = parse_address(args.switch)
        mix = load_mix(args.mix) if args.mix else (MixEntry(),)
        mix = with_ledger_cards(mix, tuple(args.ledger_card), args.ledger_weight)
        wire = wire_format(args.dialect, args.bitmap, args.framing, args.tpdu)
    except (ValueError, SimConfigError) as exc:
        return _fail(str(exc))
    if args.terminals < 1 or args.duration <= 0:
        return _fail("--terminals and --duration must be positive")
    mac_spec: dict[str, Any] | None = None
    if args.mac == "key":
        if not args.mac_key:
            return _fail("--mac key needs --mac-key HEX")
        mac_spec = {"mode": "key", "key": args.mac_key, "algorithm": args.mac_algorithm}
    elif args.mac == "keys":
        if args.mac_keys is None:
            return _fail("--mac keys needs --mac-keys FILE")
        mac_spec = {"mode": "keys", "file": str(args.mac_keys), "algorithm": args.mac_algorithm}
    elif args.mac == "store":
        if args.data_dir is None:
            return _fail("--mac store needs --data-dir")
        mac_spec = {
            "mode": "store",
            "data_dir": str(args.data_dir),
            "dsn": args.database,
            "lmk_file": str(args.lmk_file) if args.lmk_file else None,
            "allow_lmk_in_data_dir": args.allow_lmk_in_data_dir,
            "provision": args.provision,
        }
    options = LoadOptions(
        host=host,
        port=port,
        wire=wire,
        terminals=args.terminals,
        duration_s=args.duration,
        rate=args.rate,
        concurrency=args.concurrency,
        mix=mix,
        timeout_s=args.timeout,
        terminal_prefix=args.terminal_prefix,
        first_terminal=args.first_terminal,
        seed=args.seed,
        reconnect=args.reconnect,
    )
    live = not args.quiet and sys.stderr.isatty()
    _progress(
        f"load: {args.terminals} terminals at {host}:{port} for {args.duration:g} s"
        " (Ctrl-C stops it with the report so far)"
    )
    with ProgressBar(live, args.duration) as bar:
        if args.processes > 1:
            result = run_load_processes(options, args.processes, mac_spec, bar.update)
        else:
            if mac_spec is not None:
                try:
                    import attrs

                    options = attrs.evolve(options, macs=macs_for(mac_spec, options.terminal_ids()))
                except LoadKeyError as exc:
                    return _fail(str(exc), 1)

            def progress(r: Any, elapsed: float) -> None:
                bar.update(r.sent, r.answered, r.latency.percentile_ms(99.0), elapsed)

            result = trio.run(lambda: run_load_until_signal(options, progress=progress))
    report = result.as_dict()
    approved = sum(n for code, n in result.by_action_code.items() if is_approved(code, wire.family))
    report["approved"] = approved
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if result.interrupted:
        sys.stderr.write("forecourt sim: interrupted: the report covers the run so far\n")
    if approved == 0 and not args.allow_no_approvals:
        return _fail(nothing_approved(result, args.switch), 1)
    return 130 if result.interrupted else 0
