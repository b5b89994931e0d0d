"""`forecourt sim wallet`: the wallet provider simulator from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from ._toml import SimConfigError

__all__ = ["add_wallet_parser"]


def add_wallet_parser(kinds: argparse._SubParsersAction[Any]) -> None:
    wallet = kinds.add_parser("wallet", help="run the wallet provider simulator (HTTPS)")
    wallet.add_argument("--config", required=True, type=Path, help="provider TOML (conf/sim/)")
    wallet.add_argument("--port", type=int, help="override listen.port")
    wallet.add_argument("--tls-cert", type=Path, help="serve HTTPS: certificate chain (PEM)")
    wallet.add_argument("--tls-key", type=Path, help="serve HTTPS: its private key (PEM)")
    wallet.add_argument("--bill-dir", type=Path, help="write the daily bill files here")
    wallet.set_defaults(func=_wallet)


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"forecourt sim wallet: {message}\n")
    return code


def _wallet(args: argparse.Namespace) -> int:
    from .wallet import WalletProvider, serve_wallet, signer_of
    from .wallet_rules import load_wallet_config

    try:
        config = load_wallet_config(args.config)
    except SimConfigError as exc:
        return _fail(str(exc))
    if args.port is not None:
        config = attrs.evolve(config, port=args.port)
    if args.bill_dir is not None:
        config = attrs.evolve(config, bill_dir=args.bill_dir)
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    try:
        provider = WalletProvider(config, signer_of(config))
    except (OSError, ValueError) as exc:
        return _fail(f"keys: {exc}")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_wallet(
                    provider, certificate=args.tls_cert, key=args.tls_key, task_status=task_status
                )
            )
            scheme = "https" if args.tls_cert is not None else "http"
            sys.stderr.write(
                f"wallet simulator on {scheme}://{config.host}:{port} "
                f"({config.scheme}, {len(config.rules)} rules)\n"
            )

    try:
        trio.run(main)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        return _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}", 1)
    return 0
