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

from forecourt.keys import ceremony_cli as ceremony
from forecourt.keys import wallet_cli
from forecourt.keys.component_files import CeremonyError
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import InvalidKey, KeysError
from forecourt.keys.mac import aes_cmac, retail_mac
from forecourt.keys.model import KeyInfo, OwnerKind
from forecourt.keys.stamp import STORE_FILE_NAME, default_data_dir
from forecourt.keys.store import KeyStore


class UsageError(Exception):
    """Bad input on the command line."""


def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys", help="key store, key ceremonies, rotation, calculators", allow_abbrev=False
    )
    _common(keys, suppress=False)
    sub = keys.add_subparsers(dest="keys_command", required=True)

    def leaf(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, allow_abbrev=False)
        _common(p, suppress=True)
        p.set_defaults(func=_guarded(func))
        return p

    leaf("init", _init, "create the LMK (file, mode 0600) and an empty key store")

    p = leaf(
        "add-terminal", _add_terminal, "register a terminal: KEK ceremony and first working keys"
    )
    ceremony.add_terminal_arguments(p)

    p = leaf("add-acquirer", _add_acquirer, "register an acquirer link from ZMK components")
    ceremony.add_acquirer_arguments(p)

    p = leaf("rotate", _rotate, "make the next working keys (pending until delivered)")
    p.add_argument("owner", nargs="?", help="terminal id or acquirer name")
    p.add_argument("--all", action="store_true", help="every terminal and acquirer")
    p.add_argument("--grace", type=float, metavar="SECONDS")
    p.add_argument("--reason", default="")
    p.add_argument(
        "--activate", action="store_true", help="activate at once (out-of-band delivery)"
    )

    p = leaf("list", _list, "list keys (never key material)")
    p.add_argument("--owner")

    p = leaf("audit", _audit, "show the rotation audit")
    p.add_argument("--since", help="ISO date/time, or an age such as 30m, 12h, 7d")
    p.add_argument("--owner")

    wallet_cli.register(leaf, _open)

    calc = sub.add_parser("calc", help="calculators for test keys", allow_abbrev=False)
    csub = calc.add_subparsers(dest="calc_command", required=True)
    p = csub.add_parser("mac", help="MAC of DATA under KEY")
    p.add_argument("--algorithm", choices=["retail", "cmac"], required=True)
    p.add_argument("--key", required=True, metavar="HEX")
    p.add_argument("--data", required=True, metavar="HEX")
    p.set_defaults(func=_guarded(_calc_mac))
    p = csub.add_parser("kcv", help="KCV of KEY")
    p.add_argument("--key", required=True, metavar="HEX")
    p.add_argument("--algorithm", choices=["tdes", "aes"])
    p.set_defaults(func=_guarded(_calc_kcv))


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


def _data_dir(args: argparse.Namespace) -> Path:
    d = getattr(args, "data_dir", None)
    return Path(d) if d else default_data_dir()


def _open(args: argparse.Namespace) -> KeyStore:
    return KeyStore.open(
        _data_dir(args),
        dsn=getattr(args, "database", None),
        lmk_file=getattr(args, "lmk_file", None),
        allow_lmk_in_data_dir=getattr(args, "allow_lmk_in_data_dir", False),
    )


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _hex(text: str, what: str) -> bytes:
    t = text.strip().replace(" ", "")
    if not t or not re.fullmatch(r"[0-9A-Fa-f]*", t) or len(t) % 2:
        raise UsageError(f"{what} must be an even number of hex digits")
    return bytes.fromhex(t)


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _init(args: argparse.Namespace) -> int:
    store = KeyStore.init(
        _data_dir(args),
        dsn=getattr(args, "database", None),
        lmk_file=getattr(args, "lmk_file", None),
        allow_lmk_in_data_dir=getattr(args, "allow_lmk_in_data_dir", False),
    )
    with store:
        where = (getattr(args, "database", None) and "PostgreSQL") or str(
            _data_dir(args) / STORE_FILE_NAME
        )
        print(f"key store initialised at {where}; LMK KCV {store.lmk_kcv}")
    return 0


def _add_terminal(args: argparse.Namespace) -> int:
    with _open(args) as store:
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
        info = ceremony.acquirer_from_arguments(store, args, _actor())
    print(
        f"acquirer {info.name} registered: ZMK {info.algorithm.value} KCV {info.zmk_kcv};"
        " ZAK/ZPK v1 active"
    )
    return 0


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


def _calc_mac(args: argparse.Namespace) -> int:
    key = _hex(args.key, "--key")
    data = _hex(args.data, "--data") if args.data.strip() else b""
    try:
        mac = retail_mac(key, data) if args.algorithm == "retail" else aes_cmac(key, data)
    except InvalidKey as exc:
        raise UsageError(str(exc)) from None
    print(mac.hex().upper())
    return 0


def _calc_kcv(args: argparse.Namespace) -> int:
    key = _hex(args.key, "--key")
    if args.algorithm == "aes" or (args.algorithm is None and len(key) == 32):
        algorithm = {16: Algorithm.AES128, 24: Algorithm.AES192, 32: Algorithm.AES256}.get(len(key))
    else:
        algorithm = {16: Algorithm.TDES2, 24: Algorithm.TDES3}.get(len(key))
    if algorithm is None:
        raise UsageError("key length does not fit the algorithm (TDES 16/24, AES 16/24/32 bytes)")
    print(kcv(key, algorithm))
    return 0
