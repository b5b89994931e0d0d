"""`forecourt keys ...`: the operator's key commands.

Every command exits 2 with one line on bad input, never a traceback. Only
`add-terminal` shows clear key material (each KEK component to its own custodian,
see `ceremony`) and `calc`, which works on test keys given on the command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs
from forecourt.keys import calc_cli, dukpt_cli, wallet_cli
from forecourt.keys import ceremony_cli as ceremony
from forecourt.keys import ceremony_device as device
from forecourt.keys.component_files import CeremonyError
from forecourt.keys.errors import KeysError
from forecourt.keys.model import KeyInfo, OwnerKind
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.keys.stamp import STORE_FILE_NAME, default_data_dir
from forecourt.keys.store import KeyStore
from forecourt.keys.store_location import StoreLocation, read_store_location

_C = "--config /etc/forecourt/forecourt.toml"
EXAMPLES = {
    "init": f"forecourt keys init {_C} --lmk-file /etc/forecourt/lmk.key",
    "add-terminal": f"forecourt keys add-terminal T0000001 {_C}",
    "add-acquirer": f"forecourt keys add-acquirer bank {_C}",
    "export-test-keys": f"forecourt keys export-test-keys bank {_C} --to bank-test-keys.toml",
    "add-wallet": f"forecourt keys add-wallet wallet {_C} --scheme hmac-sha256"
    " --secret-file wallet-secret.hex",
    "wallets": f"forecourt keys wallets {_C}",
    "rotate": f"forecourt keys rotate T0000001 {_C} --reason 'daily rotation'",
    "list": f"forecourt keys list {_C} --owner T0000001",
    "audit": f"forecourt keys audit {_C} --since 7d",
    **calc_cli.EXAMPLES,
    **dukpt_cli.EXAMPLES,
}


UsageError = calc_cli.UsageError


def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--config",
        type=Path,
        default=d,
        metavar="FILE",
        help="the switch's configuration: its data_dir, database and [keys] lmk_file"
        " (the options below win over it)",
    )
    p.add_argument(
        "--data-dir", default=d, help="data directory (default ./data or $FORECOURT_DATA_DIR)"
    )
    p.add_argument("--database", default=d, metavar="DSN", help="PostgreSQL DSN instead of SQLite")
    p.add_argument(
        "--lmk-file",
        default=d,
        help="LMK file, outside the data directory (init writes it, mode 0600; later commands"
        " default to the file init wrote; $FORECOURT_LMK wins)",
    )
    p.add_argument(
        "--allow-lmk-in-data-dir",
        action="store_true",
        default=d if suppress else False,
        help="accept an LMK file inside the data directory (demos and tests only)",
    )
    p.add_argument(
        "--backend",
        choices=["software", "payshield"],
        default=d,
        help="where the keys are: software (the LMK file) or payshield (a payment HSM);"
        " default [keys] backend, else software",
    )
    p.add_argument(
        "--hsm",
        default=d,
        metavar="HOST:PORT",
        help="the payShield (or `forecourt sim hsm`) for --backend payshield;"
        " default [keys.payshield] host and port",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys", help="key store, key ceremonies, rotation, calculators", allow_abbrev=False
    )
    _common(keys, suppress=False)
    sub = keys.add_subparsers(dest="keys_command", required=True)

    def leaf(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, allow_abbrev=False, epilog=f"example: {EXAMPLES[name]}")
        _common(p, suppress=True)
        p.set_defaults(func=_guarded(func))
        return p

    leaf("init", _init, "create the LMK (file, mode 0600) and an empty key store")

    p = leaf(
        "add-terminal", _add_terminal, "register a terminal: KEK ceremony and first working keys"
    )
    ceremony.add_terminal_arguments(p)
    device.add_terminal_block_arguments(p)

    p = leaf("add-acquirer", _add_acquirer, "register an acquirer link from ZMK components")
    ceremony.add_acquirer_arguments(p)
    device.add_acquirer_block_arguments(p)

    p = leaf(
        "export-test-keys",
        _export_test_keys,
        "write an acquirer link's clear ZAK/ZPK to a 0600 file, for a TEST host only",
    )
    p.add_argument("name", help="the acquirer link, as registered by add-acquirer")
    p.add_argument(
        "--to",
        type=Path,
        required=True,
        metavar="FILE",
        help="the key file to create (mode 0600, never over another file);"
        " `forecourt sim acquirer --keys FILE` reads it",
    )

    p = leaf("rotate", _rotate, "make the next working keys (pending until delivered)")
    p.add_argument("owner", nargs="?", help="terminal id or acquirer name")
    p.add_argument("--all", action="store_true", help="every terminal and acquirer")
    p.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="how long the replaced keys stay accepted (default [keys] grace_s)",
    )
    p.add_argument("--reason", default="", help="why, for the key audit")
    p.add_argument(
        "--activate", action="store_true", help="activate at once (out-of-band delivery)"
    )

    p = leaf("list", _list, "list keys (never key material)")
    p.add_argument("--owner", help="only this terminal id or acquirer name")

    p = leaf("audit", _audit, "show the rotation audit")
    p.add_argument("--since", help="ISO date/time, or an age such as 30m, 12h, 7d")
    p.add_argument("--owner", help="only this terminal id or acquirer name")

    wallet_cli.register(leaf, _open)
    dukpt_cli.register(leaf, _open, _actor)

    calc_cli.register(sub, _guarded)


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (KeysError, UsageError, CeremonyError) as exc:
            print(f"forecourt keys: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"forecourt keys: error: {exc.strerror or type(exc).__name__}", file=sys.stderr)
            return 2

    return run


def _location(args: argparse.Namespace) -> StoreLocation:
    """The options given, else the `--config` file's values, else the defaults."""
    config = getattr(args, "config", None)
    base = read_store_location(config) if config else StoreLocation(default_data_dir())
    d = getattr(args, "data_dir", None)
    lmk_file = getattr(args, "lmk_file", None)
    return StoreLocation(
        data_dir=Path(d) if d else base.data_dir,
        database=getattr(args, "database", None) or base.database,
        lmk_file=Path(lmk_file) if lmk_file else base.lmk_file,
        allow_lmk_in_data_dir=bool(getattr(args, "allow_lmk_in_data_dir", False))
        or base.allow_lmk_in_data_dir,
        key_backend=getattr(args, "backend", None) or base.key_backend,
        payshield=_hsm_address(getattr(args, "hsm", None), base.payshield),
    )


def _hsm_address(text: str | None, base: PayShieldSettings | None) -> PayShieldSettings | None:
    if text is None:
        return base
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--hsm {text}: give HOST:PORT, e.g. 127.0.0.1:1500")
    return attrs.evolve(base or PayShieldSettings(), host=host, port=int(port))


def _open(args: argparse.Namespace) -> KeyStore:
    at = _location(args)
    return KeyStore.open(
        at.data_dir,
        dsn=at.database,
        lmk_file=at.lmk_file,
        allow_lmk_in_data_dir=at.allow_lmk_in_data_dir,
        module=at.key_backend,
        payshield=at.payshield,
    )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


_hex = calc_cli.hex_argument


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _init(args: argparse.Namespace) -> int:
    at = _location(args)
    store = KeyStore.init(
        at.data_dir,
        dsn=at.database,
        lmk_file=at.lmk_file,
        allow_lmk_in_data_dir=at.allow_lmk_in_data_dir,
        module=at.key_backend,
        payshield=at.payshield,
    )
    with store:
        where = "PostgreSQL" if at.database else str(at.data_dir / STORE_FILE_NAME)
        print(
            f"key store initialised at {where}; LMK KCV {store.lmk_kcv};"
            f" keys on the {store.key_backend} backend"
        )
    return 0


def _add_terminal(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.kek_block or store.key_backend != "software":
            return device.add_terminal_command(store, args, _actor())
        c = ceremony.terminal_from_arguments(store, args, _actor())
    print(f"terminal {c.terminal_id} registered ({c.algorithm.value}); KEK KCV {c.kcv}")
    if args.component_files is not None:
        for i, ckcv in enumerate(c.component_kcvs, 1):
            path = args.component_files / f"{c.terminal_id}-component-{i}.txt"
            print(f"  component {i} KCV {ckcv} in {path} (mode 0600), for custodian {i} only")
    print("First working keys TAK/TPK/TDK v1 are active; the terminal gets them at sign-on.")
    return 0


def _add_acquirer(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.zmk_block or store.key_backend != "software":
            info = device.acquirer_from_block(store, args, _actor())
        else:
            info = ceremony.acquirer_from_arguments(store, args, _actor())
    print(
        f"acquirer {info.name} registered: ZMK {info.algorithm.value} KCV {info.zmk_kcv};"
        " ZAK/ZPK v1 active"
    )
    return 0


def _export_test_keys(args: argparse.Namespace) -> int:
    with _open(args) as store:
        return ceremony.export_test_keys(store, args, _actor())


def _rotate(args: argparse.Namespace) -> int:
    if bool(args.owner) == bool(args.all):
        raise UsageError("give a terminal id or acquirer name, or --all")
    if args.grace is not None and args.grace < 0:
        raise UsageError("--grace must not be negative")
    with _open(args) as store:
        owners = [o.name for o in store.owners()] if args.all else [args.owner]
        for owner in owners:
            ch = store.rotate(
                owner, actor=_actor(), reason=args.reason, grace=args.grace, activate=args.activate
            )
            state = "active" if ch.activated else "pending delivery"
            keys = ", ".join(f"{k.key_type.value} v{k.version} KCV {k.kcv}" for k in ch.keys)
            print(f"{owner}: {keys} ({state})")
    return 0


def _print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=160 if not sys.stdout.isatty() else None).print(table)


def _list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        store.retire_expired()
        keys: list[KeyInfo] = store.list_keys(args.owner)
        kinds = {o.name: o.kind for o in store.owners()}
    _print_table(
        "keys",
        ("owner", "kind", "type", "algorithm", "version", "state", "KCV", "activated", "expires"),
        (
            (
                k.owner,
                kinds.get(k.owner, OwnerKind.TERMINAL).value,
                k.key_type.value,
                k.algorithm.value,
                str(k.version),
                k.state.value,
                k.kcv,
                _fmt_time(k.activated_at),
                _fmt_time(k.expires_at),
            )
            for k in keys
        ),
    )
    return 0


_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    m = _AGE.match(text.strip())
    if m:
        return (
            time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        )
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            "--since must be an ISO date/time or an age such as 30m, 12h, 7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _version(version: int | None, check: str | None) -> str:
    return "-" if version is None else f"v{version} {check}"


def _audit(args: argparse.Namespace) -> int:
    since = _since(args.since)
    with _open(args) as store:
        entries = store.audit(since, args.owner)
    _print_table(
        "key audit",
        ("when", "actor", "action", "owner", "type", "old", "new", "reason"),
        (
            (
                _fmt_time(e.at),
                e.actor,
                e.action,
                e.owner,
                "-" if e.key_type is None else e.key_type.value,
                _version(e.old_version, e.old_kcv),
                _version(e.new_version, e.new_kcv),
                e.reason,
            )
            for e in entries
        ),
    )
    return 0
