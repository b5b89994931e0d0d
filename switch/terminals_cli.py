"""`forecourt terminals`: each terminal's standing, and `add-pending` for a new one.

The list joins the key store (registered terminals and their working keys'
versions) with the journal (the cashier signed on, the registration, the devices'
last report, when the terminal was last heard). `add-pending` makes a terminal
wait for its online registration and prints its one-time activation code once:
the journal keeps only the code's argon2 hash. Bad input is one line, exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from forecourt.keys.errors import KeysError
from forecourt.keys.model import KeyState
from forecourt.keys.store import KeyStore
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.journal import open_journal
from forecourt.switch.journal.model import JournalError
from forecourt.switch.operator_commands import operator_console
from forecourt.switch.terminals.devices import describe
from forecourt.switch.terminals.registration import CODE_LENGTH, add_pending
from rich.console import Console
from rich.table import Table

_C = "--config /etc/forecourt/forecourt.toml"
_MAX_EXPIRY_S = 30 * 86400.0

_LAST_SEEN = "SELECT terminal_id, max(received_at) AS at FROM transactions GROUP BY terminal_id"
_OPERATORS = "SELECT terminal_id, operator_id, signed_on_at, updated_at FROM terminal_operators"
_REGISTRATIONS = (
    "SELECT terminal_id, state, serial, expires_at, failures, registered_at, updated_at "
    "FROM terminal_registrations"
)
_DEVICES = "SELECT terminal_id, status, reported_at FROM terminal_devices"


class _BadInput(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "terminals",
        help="terminals: last seen, key versions, cashier, devices; add a pending one",
        epilog=f"example: forecourt terminals {_C}",
    )
    p.add_argument("--config", type=Path, help="switch configuration (TOML)")
    p.set_defaults(func=_cmd(_list))
    sub = p.add_subparsers(dest="terminals_command", metavar="COMMAND")
    a = sub.add_parser(
        "add-pending",
        help="make a terminal wait for its online registration, with a one-time code",
        epilog=f"example: forecourt terminals add-pending {_C} --terminal-id T0000009"
        " --expires-in 86400",
    )
    a.add_argument("--config", type=Path, help="switch configuration (TOML)")
    a.add_argument("--terminal-id", required=True, help="the terminal id (field 41), 1-8 chars")
    a.add_argument(
        "--expires-in",
        type=float,
        default=86400.0,
        metavar="S",
        help="seconds the code stays valid (default 86400, at most 30 days)",
    )
    a.add_argument("--serial", help="only this serial number (48-16) may register (default any)")
    a.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        help="wrong codes or serials before the registration locks (default 5)",
    )
    a.set_defaults(func=_cmd(_add_pending))


def _cmd(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args, operator_console()))
        except (_BadInput, JournalError, ConfigError, KeysError) as exc:
            print(f"forecourt terminals: error: {exc}", file=sys.stderr)
            return 2

    return run


def _config(args: argparse.Namespace) -> SwitchConfig:
    """The configuration, whose journal must exist already (never made here, in what
    may be the wrong data directory)."""
    if args.config is None:
        raise _BadInput("give --config, the switch's configuration file")
    config = load_config(args.config)
    if config.database is None and not config.journal_path.exists():
        raise _BadInput(
            f"no journal at {config.journal_path} (check data_dir in {args.config},"
            " or run `forecourt db migrate`)"
        )
    return config


def _ts(value: object) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(float(str(value)), UTC).isoformat(timespec="seconds")


# -- add-pending -------------------------------------------------------------------


def _add_pending(args: argparse.Namespace, console: Console) -> int:
    terminal_id = str(args.terminal_id)
    if not 1 <= len(terminal_id) <= 8 or not terminal_id.isascii() or not terminal_id.isprintable():
        raise _BadInput("--terminal-id must be 1-8 printable ASCII characters (field 41)")
    if not 0 < args.expires_in <= _MAX_EXPIRY_S:
        raise _BadInput(f"--expires-in must be above 0 and at most {_MAX_EXPIRY_S:.0f} seconds")
    if not 1 <= args.max_attempts <= 100:
        raise _BadInput("--max-attempts must be 1 to 100")
    if args.serial is not None and not 1 <= len(args.serial) <= 32:
        raise _BadInput("--serial must be 1-32 characters (48-16)")
    config = _config(args)

    async def issue() -> str:
        async with open_journal(config) as journal:
            return await add_pending(
                journal,
                terminal_id,
                expires_in_s=args.expires_in,
                actor=_actor(),
                expected_serial=args.serial,
                max_attempts=args.max_attempts,
            )

    code = trio.run(issue)
    shown = "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))
    expires = _ts(datetime.now(UTC).timestamp() + args.expires_in)
    console.print(
        f"terminal {terminal_id} is pending its online registration (1804/882).\n"
        "activation code, shown this once and stored only as a hash: give it to the\n"
        "installer by hand, never by e-mail or ticket:\n\n"
        f"    {shown}\n\n"
        f"valid until {expires} UTC, for serial {args.serial or 'any'}; "
        f"{args.max_attempts} wrong attempts lock it.\n"
        "registration hands out no key: the terminal's KEK comes from the key ceremony\n"
        f"(`forecourt keys add-terminal {terminal_id} {_C}`), which must come first.",
        highlight=False,
    )
    return 0


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


# -- the list ----------------------------------------------------------------------


def _key_versions(config: SwitchConfig) -> dict[str, str]:
    """Each registered terminal's working keys in use: 'TAK v2, TPK v2, TDK v2'."""
    store = KeyStore.open(
        config.data_dir,
        dsn=config.database,
        lmk_file=config.keys.lmk_file,
        allow_lmk_in_data_dir=config.keys.allow_lmk_in_data_dir,
    )
    try:
        terminals = set(store.terminals())
        out: dict[str, list[str]] = {t: [] for t in terminals}
        for k in store.list_keys():
            if k.owner in terminals and k.state is KeyState.ACTIVE:
                out[k.owner].append(f"{k.key_type.value} v{k.version}")
    finally:
        store.close()
    return {t: ", ".join(sorted(v)) for t, v in out.items()}


async def _journal_view(config: SwitchConfig) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}

    def at(terminal_id: str) -> dict[str, Any]:
        return seen.setdefault(terminal_id, {})

    async with open_journal(config) as journal:
        for r in await journal.view(_LAST_SEEN):
            at(r["terminal_id"])["last"] = float(r["at"])
        for r in await journal.view(_OPERATORS):
            entry = at(r["terminal_id"])
            entry["operator"] = r["operator_id"]
            entry["last"] = max(entry.get("last", 0.0), float(r["updated_at"]))
        for r in await journal.view(_REGISTRATIONS):
            at(r["terminal_id"])["registration"] = r
        for r in await journal.view(_DEVICES):
            entry = at(r["terminal_id"])
            entry["devices"] = r
            entry["last"] = max(entry.get("last", 0.0), float(r["reported_at"]))
    return seen


def _registration(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r["state"] == "registered":
        return f"serial {r['serial']}"
    if r["state"] == "locked":
        return f"LOCKED ({r['failures']} wrong)"
    expired = float(r["expires_at"]) <= datetime.now(UTC).timestamp()
    return "pending, code EXPIRED" if expired else f"pending until {_ts(r['expires_at'])}"


def _list(args: argparse.Namespace, console: Console) -> int:
    config = _config(args)
    versions = _key_versions(config)
    journal = trio.run(_journal_view, config)
    t = Table(title="terminals")
    for col in ("terminal", "registration", "last seen (UTC)", "keys", "cashier", "devices"):
        t.add_column(col)
    for terminal_id in sorted(set(versions) | set(journal)):
        entry = journal.get(terminal_id, {})
        devices = entry.get("devices")
        t.add_row(
            terminal_id,
            _registration(entry.get("registration")),
            _ts(entry.get("last")),
            versions.get(terminal_id, "not in the key store"),
            entry.get("operator") or "-",
            "-"
            if devices is None
            else f"{describe(str(devices['status']))} ({_ts(devices['reported_at'])})",
        )
    console.print(t)
    return 0
