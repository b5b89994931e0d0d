"""`forecourt console`: serve the web console; `forecourt console add-operator`."""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
import time
from pathlib import Path

import trio
from forecourt.console.operators import BadOperator, check_name, check_role, hash_password
from forecourt.console.serve import ConsoleListen, serve_console
from forecourt.console.sessions import SecretUnusable
from forecourt.keys.errors import KeysError
from forecourt.switch.config import ConfigError, SwitchConfig, load_config
from forecourt.switch.journal import JournalError, open_journal
from forecourt.switch.journal.writes import AddOperator, AuditConsoleAction
from forecourt.switch.log import configure_logging

_EXAMPLE = """example:
  forecourt console add-operator alice --role operator --config /etc/forecourt/forecourt.toml
  forecourt console --config /etc/forecourt/forecourt.toml --listen 127.0.0.1:8470
"""


class _BadInput(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "console",
        help="the operations desk's web console (docs/console.md)",
        description="Serve the web console against the switch's journal and key store.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="switch configuration (TOML)")
    p.add_argument(
        "--listen", default="127.0.0.1:8470", metavar="HOST:PORT", help="default 127.0.0.1:8470"
    )
    p.add_argument("--tls-cert", type=Path, help="serve HTTPS: certificate chain (PEM)")
    p.add_argument("--tls-key", type=Path, help="serve HTTPS: its private key (PEM)")
    p.set_defaults(func=_guarded(_serve))
    sub = p.add_subparsers(dest="console_command", metavar="{add-operator}")
    add = sub.add_parser(
        "add-operator",
        help="add a console operator (password from a prompt, or one line on stdin)",
        epilog="example:\n  echo 'a long passphrase' | forecourt console add-operator bob "
        "--role viewer --config forecourt.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", help="1-32 of a-z 0-9 . _ -, starting with a letter")
    add.add_argument(
        "--role",
        required=True,
        choices=("viewer", "operator", "security_officer"),
        help="viewer reads; operator also retries/abandons SAF; security_officer also audits",
    )
    add.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="switch configuration (TOML)"
    )
    add.set_defaults(func=_guarded(_add_operator))


def _guarded(fn: object) -> object:
    def run(args: argparse.Namespace) -> int:
        try:
            assert callable(fn)
            return int(fn(args))
        except (_BadInput, BadOperator, ConfigError, JournalError, KeysError, SecretUnusable) as e:
            print(f"forecourt: error: {e}", file=sys.stderr)
            return 2

    return run


def _config(args: argparse.Namespace) -> SwitchConfig:
    if args.config is None:
        raise _BadInput("console: give the switch configuration with --config FILE")
    return load_config(args.config)


def _listen(args: argparse.Namespace) -> ConsoleListen:
    host, sep, port = str(args.listen).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _BadInput(f"--listen {args.listen!r}: use HOST:PORT, e.g. 127.0.0.1:8470")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise _BadInput("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise _BadInput(f"{path}: no such file")
    return ConsoleListen(host.strip("[]") or "127.0.0.1", int(port), args.tls_cert, args.tls_key)


def _serve(args: argparse.Namespace) -> int:
    config = _config(args)
    listen = _listen(args)
    configure_logging(config.logging.level, config.logging.format)
    _check_free(listen)
    try:
        trio.run(serve_console, config, listen)
    except (OSError, ExceptionGroup) as exc:
        cause = _os_error(exc)
        if cause is None:
            raise
        raise _BadInput(
            f"console: cannot listen on {listen.host}:{listen.port}: {cause.strerror or cause}"
        ) from None
    return 0


def _check_free(listen: ConsoleListen) -> None:
    """Bind the address once before starting (and let go): a port in use is named in
    one line here (hypercorn would raise it from inside its task group)."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise _BadInput(
            f"console: cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}"
        ) from None


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError (a port in use) inside what trio raised, if that is all it is."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _os_error(exc.exceptions[0])
    return None


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise _BadInput("the two passwords differ: run the command again")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _add_operator(args: argparse.Namespace) -> int:
    config = _config(args)
    name = check_name(args.name)
    role = check_role(args.role)
    password_hash = hash_password(_password())
    actor = f"cli:{_os_user()}"

    async def add() -> bool:
        """False when the journal refused it (the name exists)."""
        async with open_journal(config) as journal:
            now = time.time()
            try:
                await journal.write(
                    AddOperator(name, role.value, password_hash, now),
                    AuditConsoleAction(now, actor, "add_operator", name, role.value),
                )
            except JournalError:
                return False
        return True

    if not trio.run(add):
        raise _BadInput(f"operator {name!r} exists: choose another name")
    print(f"operator {name} added as {role.value}")
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
