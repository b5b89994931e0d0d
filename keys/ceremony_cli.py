"""`keys add-terminal` / `keys add-acquirer` arguments (nothing secret is an argument),
and `keys export-test-keys`, the one clear export, for a test host.

Components come from a no-echo prompt or from files (`--component-file`); KCVs,
which are not secret, may be given as options. The old `--component HEX` is
refused by name, without echoing its value, so a key typed the old way is not
repeated into a log as argparse's "unrecognized arguments" would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forecourt.keys.ceremony import Custodians, import_acquirer, import_terminal, new_terminal
from forecourt.keys.component_files import CeremonyError, write_private_file
from forecourt.keys.crypto import Family
from forecourt.keys.model import AcquirerInfo, KekCeremony, KeyType
from forecourt.keys.store import KeyStore


class _Refused(argparse.Action):
    """The old `--component HEX`: refused without echoing the value (it may be a key)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            f"{option_string} no longer takes a key on the command line (ps and shell"
            " history keep it): use --component-file PATH or the no-echo prompt"
        )


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--component-file",
        action="append",
        type=Path,
        metavar="PATH",
        help="a custodian's component file, once per component"
        " (without it, components are typed at a no-echo prompt)",
    )
    p.add_argument(
        "--component-kcv",
        action="append",
        metavar="HEX",
        help="a component's KCV, once per component in order (asked for when not given)",
    )
    p.add_argument("--kcv", metavar="HEX", help="the combined key's KCV (asked for when not given)")
    p.add_argument("--component", nargs="?", action=_Refused, help=argparse.SUPPRESS)


def add_terminal_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("terminal_id", help="the terminal's id (field 41, 8 characters)")
    p.add_argument(
        "--algorithm",
        choices=["tdes", "aes"],
        default="tdes",
        help="the KEK's algorithm: tdes (retail MAC) or aes (CMAC); default tdes",
    )
    p.add_argument(
        "--component-files",
        metavar="DIR",
        type=Path,
        help="write the new KEK's components to DIR, one 0600 file each (no terminal needed)",
    )
    p.add_argument(
        "--import",
        dest="import_components",
        action="store_true",
        help="load a KEK the terminal already holds, from its two components",
    )
    _import_arguments(p)


def add_acquirer_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the acquirer link, as its [[acquirers]] name")
    _import_arguments(p)
    p.add_argument(
        "--components",
        type=int,
        default=2,
        metavar="N",
        help="how many ZMK components the custodians type (default 2)",
    )


def terminal_from_arguments(store: KeyStore, args: argparse.Namespace, actor: str) -> KekCeremony:
    """`add-terminal`: a new KEK, or (`--import`, `--component-file`) one already held."""
    family = Family(args.algorithm)
    importing = args.import_components or bool(args.component_file)
    if args.component_files is not None and importing:
        raise CeremonyError("--component-files writes a new KEK; it does not go with --import")
    if not importing and (args.component_kcv or args.kcv):
        raise CeremonyError("--component-kcv and --kcv check an imported KEK: add --import")
    custodians = Custodians.terminal()
    if importing:
        return import_terminal(
            store,
            args.terminal_id,
            family,
            custodians=custodians,
            files=args.component_file or (),
            component_kcvs=args.component_kcv or (),
            kek_kcv=args.kcv,
            actor=actor,
        )
    return new_terminal(
        store,
        args.terminal_id,
        family,
        custodians=None if args.component_files else custodians,
        component_dir=args.component_files,
        actor=actor,
    )


def acquirer_from_arguments(store: KeyStore, args: argparse.Namespace, actor: str) -> AcquirerInfo:
    """`add-acquirer`: the ZMK from its custodians' components."""
    return import_acquirer(
        store,
        args.name,
        custodians=Custodians.terminal(),
        files=args.component_file or (),
        count=args.components,
        component_kcvs=args.component_kcv or (),
        zmk_kcv=args.kcv,
        actor=actor,
    )


_TEST_HOST_WARNING = (
    "WARNING: clear zone keys, for a test host or simulator only. This export is a key"
    " ceremony of its own (recorded in `keys audit`): a live acquirer takes its keys"
    " under the ZMK at sign-on, never from a file."
)


def export_test_keys(store: KeyStore, args: argparse.Namespace, actor: str) -> int:
    """`keys export-test-keys`: a link's clear ZAK/ZPK to a new 0600 file (a test host)."""
    exported = store.export_zone_keys(args.name, actor=actor)
    if not exported:
        raise CeremonyError(f"acquirer {args.name!r} has no active ZAK or ZPK to export")
    lines = [
        f"# forecourt keys export-test-keys {args.name}: CLEAR zone keys, TEST HOST ONLY.",
        "# Read by `forecourt sim acquirer --keys FILE`; destroy it after the test.",
    ]
    for key_type, version, check, key in exported:
        section, name = ("mac", "zak") if key_type is KeyType.ZAK else ("pin", "zpk")
        lines += [f"[{section}]", f"# {key_type.value} v{version} KCV {check}"]
        lines.append(f'{name} = "{key.hex().upper()}"')
    write_private_file(args.to, "\n".join(lines) + "\n")
    print(_TEST_HOST_WARNING, file=sys.stderr)
    described = ", ".join(f"{t.value} v{v} KCV {c}" for t, v, c, _ in exported)
    print(f"acquirer {args.name}: {described} written to {args.to} (mode 0600)")
    return 0
