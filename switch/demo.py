"""`forecourt demo`: the switch, an acquirer simulator and the certification suite.

One process tree, embedded defaults: keys made in a data directory (a temporary
one unless given), the switch on an SQLite journal, the acquirer simulator with
rules that approve, decline, partially approve and time out, the certification
scripts of conf/cert/ against the switch, a short load run, then a clean stop.
Exit 0 only when every certification case passed.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.errors import CodecError
from forecourt.codecs.family import Family
from forecourt.keys.crypto import adjust_parity, xor
from forecourt.keys.errors import KeysError
from forecourt.keys.exchange import install_key_change
from forecourt.keys.lmk import Lmk, default_lmk_path, load_lmk
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.keys.model import KeyType
from forecourt.keys.pin import PinKey
from forecourt.simulators.acquirer import AcquirerSimulator, load_acquirer_config
from forecourt.simulators.load import LoadOptions, LoadResult, run_load
from forecourt.simulators.loadkeys import macs_for
from forecourt.simulators.script import load_script
from forecourt.simulators.terminal import CaseResult, run_script
from forecourt.simulators.wire import wire_format
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.demo_dukpt import add_dukpt_sections, listener_for, prepare_dukpt
from forecourt.switch.demo_ic_cards import IC_CARD_TERMINALS, ic_cards_section, seed_demo_ic_cards
from forecourt.switch.demo_ledger import (
    LEDGER_CERT_TERMINALS,
    demo_ledger_entries,
    seed_demo_ledger,
)
from forecourt.switch.demo_params import PARAMS_TERMINAL, params_section, publish_demo_params
from forecourt.switch.demo_payshield import (
    LOAD_SKIPPED,
    PAYSHIELD,
    SKIPPED_SCRIPTS,
    DemoHsm,
    init_demo_store,
    open_demo_store,
    register_acquirer,
    register_terminal,
    start_hsm,
)
from forecourt.switch.demo_split import SPLIT_TERMINALS, demo_routes
from forecourt.switch.demo_stand_in import STAND_IN_TERMINAL, acquirer_record, stand_in_sections
from forecourt.switch.demo_status_batch import STATUS_BATCH_TERMINALS
from forecourt.switch.demo_terminals import OPERATOR_TERMINAL, prepare_registration
from forecourt.switch.demo_wallet import WalletDemo, prepare_wallet_keys, start_wallet
from forecourt.switch.log import configure_logging
from forecourt.switch.server import RunningSwitch, run_switch
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
# The certification scripts' terminals hold this test KEK (two components XOR to it).
TEST_KEK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_COMPONENT_1 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")
# The demo's ZMK with the acquirer simulator (two components, XOR'd): test only.
TEST_ZMK_1 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_ZMK_2 = bytes.fromhex("1F1F1F1F1F1F1F1F2E2E2E2E2E2E2E2E")
ACQUIRER = "acquirer-sim"
CERT_TERMINALS = (
    "T0000001", "T0000002", "T0000003", "T0000004", *SPLIT_TERMINALS, *LEDGER_CERT_TERMINALS,
    *IC_CARD_TERMINALS,
)  # fmt: skip
LOAD_TERMINALS = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the switch, an acquirer simulator and the certification suite",
        epilog="example: forecourt demo --load-seconds 0",
    )
    parser.add_argument("--data-dir", type=Path, help="keep keys and journal here (default: temp)")
    parser.add_argument("--load-seconds", type=float, default=3.0, help="0 skips the load run")
    parser.add_argument("--cert", type=Path, default=CONF / "cert", help="certification scripts")
    parser.add_argument("--verbose", action="store_true", help="show the switch's log")
    parser.add_argument(
        "--backend",
        choices=["software", PAYSHIELD],
        default="software",
        help="keys under the software LMK, or in `forecourt sim hsm` (payshield:"
        " master keys formed at its console, every working key made in it)",
    )
    parser.set_defaults(func=run)


def _prepare_keys(data_dir: Path, hsm: DemoHsm | None = None) -> tuple[Lmk, bytes, PinKey | None]:
    """The LMK, a store with the certification and load terminals and the acquirer link
    registered; the link's clear ZAK (the link MACs, as by default) and its ZPK, for the
    acquirer simulator (the two hold them as if exchanged under the ZMK).

    The demo's throw-away LMK sits in its data directory, which production refuses."""
    lmk_path = default_lmk_path(data_dir)
    if not lmk_path.exists():
        init_demo_store(data_dir, hsm)
    lmk = load_lmk(lmk_path, data_dir=data_dir, allow_in_data_dir=True)
    store = open_demo_store(data_dir, lmk, hsm)
    try:
        component_2 = bytes(a ^ b for a, b in zip(TEST_KEK, TEST_COMPONENT_1, strict=True))
        for terminal_id in (
            *CERT_TERMINALS,
            STAND_IN_TERMINAL,
            OPERATOR_TERMINAL,
            PARAMS_TERMINAL,
            *STATUS_BATCH_TERMINALS,
        ):
            if not store.is_registered(terminal_id):
                register_terminal(store, hsm, terminal_id, (TEST_COMPONENT_1, component_2))
        for n in range(1, LOAD_TERMINALS + 1 if hsm is None else 1):  # payshield: no load run
            terminal_id = f"L{n:07d}"
            if not store.is_registered(terminal_id):
                store.add_terminal(terminal_id, actor="demo")
        if ACQUIRER in store.acquirers():  # a kept data directory: a fresh ZAK, known here
            payload = store.rotate(ACQUIRER, actor="demo", activate=True, grace=0.0).payload
        else:
            payload = register_acquirer(store, hsm, ACQUIRER, (TEST_ZMK_1, TEST_ZMK_2))
        if hsm is None:  # AES DUKPT: not on the payshield backend
            prepare_dukpt(store)
    finally:
        store.close()
    zmk = adjust_parity(xor(TEST_ZMK_1, TEST_ZMK_2))
    # the acquirer's side takes both keys from the key change under the ZMK, as a host does
    delivered = install_key_change(zmk, payload)
    zpk = delivered.get(KeyType.ZPK)
    return lmk, delivered.get(KeyType.ZAK).key, PinKey(zpk.key, zpk.algorithm, zpk.version)


def demo_config(
    data_dir: Path, acquirer_port: int, wallet: WalletDemo | None = None, hsm: DemoHsm | None = None
) -> SwitchConfig:
    doc: dict[str, Any] = {
        "node": "demo",
        "data_dir": str(data_dir),
        "default_route": ACQUIRER,
        # fleet and consumer cards to the ledger, each route with its tender
        "routes": demo_routes(demo_ledger_entries()["acquirer"]["name"]),
        "logging": {"level": "warning", "format": "console"},
        "keys": {"grace_s": 2.0, "allow_lmk_in_data_dir": True},
        "saf": {"backoff_initial_s": 0.5, "backoff_max_s": 5.0},
        "listeners": [
            {
                "name": "ifsf",
                "host": "127.0.0.1",
                "port": 0,
                "dialect": "ifsf",
                "terminal_group": "forecourt",
            },
            {
                "name": "iso87",
                "host": "127.0.0.1",
                "port": 0,
                "dialect": "iso87ascii",
                "framing": "4a",
                "terminal_group": "forecourt",
            },
        ],
        "terminal_groups": [
            {
                "name": "forecourt",
                "terminals": "registry",
                "mac_required": True,
                "max_in_flight": 8,
                "mac_failures_before_lock": 5,
            }
        ],
        "acquirers": [
            {
                "name": ACQUIRER,
                "host": "127.0.0.1",
                "port": acquirer_port,
                "dialect": "ifsf",
                "mac": True,
                "connections": 2,
                "max_in_flight": 500,
                "request_timeout_s": 2.0,
                "echo_interval_s": 30.0,
                "sign_on": True,
                "reconnect_initial_s": 0.1,
                "reconnect_max_s": 2.0,
                "acquirer_id": "12345678",
            },
            demo_ledger_entries()["acquirer"],
        ],
    }
    stand_in = stand_in_sections(ACQUIRER)
    doc["routes"] = [*doc["routes"], *stand_in.pop("routes")]  # both keep their routes
    doc.update(stand_in)
    doc["ic_cards"] = ic_cards_section()  # switch/demo_ic_cards.py
    if wallet is not None:
        wallet.add_to(doc)
    doc["params"] = params_section()
    if hsm is None:
        add_dukpt_sections(doc)
    else:
        doc["keys"].update(hsm.keys_section())
    return parse_config(doc, source="demo")


@attrs.frozen
class DemoResult:
    results: dict[str, list[CaseResult]]
    load: LoadResult | None
    seconds: float
    skipped: dict[str, str] = attrs.field(factory=dict)  # script: why (never passed)

    @property
    def passed(self) -> bool:
        return all(r.passed for case in self.results.values() for r in case)


async def run_demo(
    data_dir: Path, cert_dir: Path, load_seconds: float, console: Console, backend: str = "software"
) -> DemoResult:
    """The demo on `backend`: software, or payshield on `forecourt sim hsm` started here."""
    if backend != PAYSHIELD:
        return await _run_demo(data_dir, cert_dir, load_seconds, console, None)
    async with trio.open_nursery() as nursery:
        hsm = await start_hsm(nursery, data_dir)
        console.print(f"HSM simulator on 127.0.0.1:{hsm.port} (key-block LMK {hsm.lmk.kcv})")
        try:
            return await _run_demo(data_dir, cert_dir, load_seconds, console, hsm)
        finally:
            nursery.cancel_scope.cancel()


async def _run_demo(
    data_dir: Path, cert_dir: Path, load_seconds: float, console: Console, hsm: DemoHsm | None
) -> DemoResult:
    started = time.monotonic()
    lmk, zak, zpk = await trio.to_thread.run_sync(_prepare_keys, data_dir, hsm)
    record = acquirer_record(data_dir)
    component_2 = bytes(a ^ b for a, b in zip(TEST_KEK, TEST_COMPONENT_1, strict=True))
    wallet_secret = await trio.to_thread.run_sync(
        prepare_wallet_keys, data_dir, lmk, (TEST_COMPONENT_1, component_2), hsm
    )
    acquirer_config = attrs.evolve(
        load_acquirer_config(CONF / "sim" / "acquirer.toml"),
        port=0,
        zak=prepare_mac(zak, MacAlgorithm.RETAIL),
        zpk=zpk,
        record_file=record,
    )
    acquirer = AcquirerSimulator(acquirer_config)
    scripts = sorted(cert_dir.glob("*.toml"))
    skipped = {
        p.name: SKIPPED_SCRIPTS[p.name] for p in scripts if hsm and p.name in SKIPPED_SCRIPTS
    }
    scripts = [p for p in scripts if p.name not in skipped]
    stop = trio.Event()
    results: dict[str, list[CaseResult]] = {}
    load: LoadResult | None = None
    async with trio.open_nursery() as nursery:
        acquirer_port = await nursery.start(acquirer.run)
        wallet = await start_wallet(nursery, data_dir, CONF, wallet_secret)
        config = demo_config(data_dir, acquirer_port, wallet, hsm)
        await seed_demo_ledger(config, lmk)
        await prepare_registration(config)  # conf/cert/11-operators.toml's pending terminal
        await publish_demo_params(config, CONF)
        await seed_demo_ic_cards(config, lmk)
        running: RunningSwitch = await nursery.start(
            functools.partial(run_switch, config, stop=stop, lmk=lmk)
        )
        console.print(
            f"switch up: ifsf on 127.0.0.1:{running.ports['ifsf']}, iso87ascii on "
            f"127.0.0.1:{running.ports['iso87']}; acquirer simulator on 127.0.0.1:{acquirer_port};"
            f" wallet simulator on https://127.0.0.1:{wallet.port}"
        )
        await trio.sleep(0.3)  # let the acquirer link sign on

        async def certify(path: Path) -> None:
            script = load_script(path)
            port = running.ports[
                listener_for(script)
                or ("ifsf" if script.terminal.wire.family is Family.ISO1993 else "iso87")
            ]
            results[script.name] = await run_script(script, ("127.0.0.1", port), record)

        console.print(f"running {len(scripts)} certification scripts ...")
        async with trio.open_nursery() as certs:
            for path in scripts:
                certs.start_soon(certify, path)
        results.update(await wallet.books_checked(results))
        if load_seconds > 0 and hsm is not None:
            console.print(LOAD_SKIPPED)
        elif load_seconds > 0:
            console.print(f"load: {LOAD_TERMINALS} terminals for {load_seconds:g} s ...")
            load = await _load(data_dir, running.ports["ifsf"], load_seconds)
        stop.set()
        with trio.move_on_after(30):
            while nursery.child_tasks and any("run_switch" in t.name for t in nursery.child_tasks):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    # what the host settled, beside the wallet's bill files: `forecourt recon import`
    acquirer.settlement.write(data_dir / "acquirer-settlement.csv")
    return DemoResult(results, load, time.monotonic() - started, skipped)


async def _load(data_dir: Path, port: int, seconds: float) -> LoadResult:
    options = LoadOptions(
        host="127.0.0.1",
        port=port,
        wire=wire_format("ifsf"),
        terminals=LOAD_TERMINALS,
        duration_s=seconds,
        concurrency=LOAD_TERMINALS,
        terminal_prefix="L",
        timeout_s=5.0,
    )
    macs = await trio.to_thread.run_sync(
        macs_for,
        {"mode": "store", "data_dir": str(data_dir), "allow_lmk_in_data_dir": True},
        options.terminal_ids(),
    )
    return await run_load(attrs.evolve(options, macs=macs))


def show(result: DemoResult, console: Console) -> None:
    table = Table(title="certification")
    table.add_column("script")
    table.add_column("case")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("reason")
    for script, cases in result.results.items():
        for case in cases:
            table.add_row(
                script,
                case.name,
                "[green]pass[/green]" if case.passed else "[red]FAIL[/red]",
                f"{case.seconds:.2f}s",
                case.reason or "",
            )
    for script, why in result.skipped.items():
        table.add_row(script, "(every case)", "[yellow]skipped[/yellow]", "", why)
    console.print(table)
    total = sum(len(c) for c in result.results.values())
    passed = sum(1 for c in result.results.values() for r in c if r.passed)
    skipped = f"; {len(result.skipped)} scripts skipped" if result.skipped else ""
    console.print(f"certification: {passed}/{total} cases passed{skipped}")
    if result.load is not None:
        summary = result.load.as_dict()
        lat = summary["latency_ms"]
        console.print(
            f"load: {summary['answered']} answered in {summary['duration_s']} s = "
            f"{summary['throughput_per_s']}/s; latency p50 {lat['p50_ms']} ms, "
            f"p99 {lat['p99_ms']} ms; action codes {summary['by_action_code']}; "
            f"timeouts {summary['timeouts']}, errors {summary['errors']}"
        )
    console.print(f"demo finished in {result.seconds:.1f} s")


def run(args: argparse.Namespace) -> int:
    console = Console()
    configure_logging("info" if args.verbose else "error", "console", stream=sys.stderr)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="forecourt-demo-")) if temporary else args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"data directory: {data_dir}")
    try:
        result = trio.run(run_demo, data_dir, args.cert, args.load_seconds, console, args.backend)
    except (KeysError, CodecError, OSError) as exc:
        print(f"forecourt demo: {exc}", file=sys.stderr)
        return 2
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    show(result, console)
    return 0 if result.passed else 1
