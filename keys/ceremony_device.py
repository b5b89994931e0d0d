"""The key ceremonies of a store on a payment HSM (`[keys] backend = "payshield"`).

A payShield forms master keys from components at its console; the host never
sees them. So on such a store:

- `add-terminal T` (no block yet) is the terminal's KEK ceremony: it makes the
  KEK's two components for the terminal's custodians, as on the software
  backend, and also two components of the terminal's sign-on proof key
  (`keys/sign_on.py`: derived from the KEK, which a payShield cannot do, so the
  custodians form it at the console as a key of its own). Nothing is stored: the
  clear KEK lived only in this command, for the moment of the derivation;
- the custodians form both at the HSM's console (`forecourt sim hsm form-key`
  for the simulator) and bring the printed 'S' blocks and KCVs to
  `add-terminal T --kek-block ... --kcv ... --sign-on-block ... --sign-on-kcv ...`;
- `add-acquirer L --zmk-block ... --kcv ...` takes a ZMK formed the same way.

The store checks each block (its usage, that it opens under the HSM's LMK, its
KCV: BU) before anything is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs
from forecourt.keys import owners, provisioning
from forecourt.keys.ceremony import Custodians, check_kcv_text, check_new_owner, show_components
from forecourt.keys.component_files import CeremonyError, write_component_files
from forecourt.keys.crypto import (
    Algorithm,
    Family,
    generate_key,
    kcv,
    working_algorithm_under,
    xor,
)
from forecourt.keys.model import AcquirerInfo, ConsoleTerminal
from forecourt.keys.provisioning import MasterKey
from forecourt.keys.sign_on import sign_on_key
from forecourt.keys.store import KeyStore

ZMK_ALGORITHMS = (Algorithm.TDES2, Algorithm.TDES3, Algorithm.AES256)


def add_terminal_block_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kek-block",
        metavar="S...",
        help="payshield store: the KEK as the HSM console formed it ('S' block; with --kcv)",
    )
    p.add_argument(
        "--sign-on-block",
        metavar="S...",
        help="payshield store: the terminal's sign-on key as the console formed it",
    )
    p.add_argument("--sign-on-kcv", metavar="HEX", help="the sign-on key's KCV (with its block)")


def add_acquirer_block_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--zmk-block",
        metavar="S...",
        help="payshield store: the ZMK as the HSM console formed it ('S' block; with --kcv)",
    )
    p.add_argument(
        "--zmk-algorithm",
        choices=[a.value for a in ZMK_ALGORITHMS],
        default=Algorithm.TDES2.value,
        help="the console-formed ZMK's algorithm (default tdes2)",
    )


@attrs.frozen(repr=False)
class DeviceKekCeremony:
    """What the KEK ceremony of a payshield store hands out: the KEK's and the
    sign-on key's components (never shown by repr), and their KCVs."""

    terminal_id: str
    kek: MasterKey
    sign_on: MasterKey
    files: tuple[Path, ...] = ()

    def __repr__(self) -> str:
        return (
            f"DeviceKekCeremony({self.terminal_id}, kek={self.kek.kcv}, sign_on={self.sign_on.kcv})"
        )


def kek_and_sign_on(terminal_id: str, family: Family) -> tuple[MasterKey, MasterKey]:
    """A fresh KEK in two components, and the sign-on key derived from it split in
    two components of its own (the first random, the second its complement)."""
    kek = provisioning.terminal_kek(family)
    algorithm = working_algorithm_under(kek.algorithm)
    key = sign_on_key(kek.key, terminal_id, kek.algorithm)
    one = generate_key(algorithm)
    sign_on = MasterKey.of(algorithm, key, (one, xor(key, one)))
    return kek, sign_on


def device_kek_ceremony(
    store: KeyStore,
    terminal_id: str,
    family: Family,
    *,
    custodians: Custodians | None,
    component_dir: Path | None,
) -> DeviceKekCeremony:
    """The components for the custodians, on the screen one at a time or in 0600 files."""
    owners.check_terminal_id(terminal_id)
    check_new_owner(store, terminal_id)
    if component_dir is None and custodians is None:
        raise CeremonyError(
            "add-terminal shows each component on a terminal, one custodian at a time;"
            " without a terminal give --component-files DIR"
        )
    kek, sign_on = kek_and_sign_on(terminal_id, family)
    label = f"terminal {terminal_id}"
    if component_dir is not None:
        files = write_component_files(component_dir, terminal_id, label, kek)
        try:
            files += write_component_files(
                component_dir, f"{terminal_id}-sign-on", label, sign_on, "sign-on key"
            )
        except BaseException:
            for path in files:
                path.unlink(missing_ok=True)
            raise
        return DeviceKekCeremony(terminal_id, kek, sign_on, tuple(files))
    assert custodians is not None
    show_components(custodians, label, kek)
    show_components(custodians, label, sign_on, "sign-on key")
    return DeviceKekCeremony(terminal_id, kek, sign_on)


def terminal_from_blocks(store: KeyStore, args: argparse.Namespace, actor: str) -> ConsoleTerminal:
    missing = [
        name
        for name, value in (
            ("--kcv", args.kcv),
            ("--sign-on-block", args.sign_on_block),
            ("--sign-on-kcv", args.sign_on_kcv),
        )
        if not value
    ]
    if missing:
        raise CeremonyError(f"--kek-block goes with {', '.join(missing)} (from the HSM console)")
    return store.add_terminal_blocks(
        args.terminal_id,
        Family(args.algorithm),
        args.kek_block,
        check_kcv_text(args.kcv, "--kcv"),
        args.sign_on_block,
        check_kcv_text(args.sign_on_kcv, "--sign-on-kcv"),
        actor=actor,
    )


def acquirer_from_block(store: KeyStore, args: argparse.Namespace, actor: str) -> AcquirerInfo:
    if not args.zmk_block:
        raise CeremonyError(
            "a payshield store takes no clear ZMK components: form the ZMK at the HSM"
            " console (forecourt sim hsm form-key --usage K0) and give --zmk-block"
        )
    if not args.kcv:
        raise CeremonyError("--zmk-block goes with --kcv, the KCV the HSM console printed")
    return store.add_acquirer_blocks(
        args.name,
        Algorithm(args.zmk_algorithm),
        args.zmk_block,
        check_kcv_text(args.kcv, "--kcv"),
        actor=actor,
    )


def console_steps(c: DeviceKekCeremony) -> list[str]:
    """What the custodians do next, at the HSM's console and here."""
    t = c.terminal_id
    files = {p.name: p for p in c.files}

    def source(stem: str) -> str:
        if not files:
            return "(each custodian types their component)"
        return " ".join(f"--component-file {files[f'{stem}-component-{i}.txt']}" for i in (1, 2))

    kcvs = "--component-kcv {} --component-kcv {}"
    kek_kcvs = kcvs.format(*(kcv(x, c.kek.algorithm) for x in c.kek.components))
    sign_kcvs = kcvs.format(*(kcv(x, c.sign_on.algorithm) for x in c.sign_on.components))
    usage = "M6" if c.sign_on.algorithm.is_aes else "M3"
    return [
        f"terminal {t}: nothing stored yet. At the HSM console the custodians form both keys:",
        f"  forecourt sim hsm form-key --data-dir HSM_DIR --usage K0 --algorithm"
        f" {c.kek.algorithm.value} {source(t)} {kek_kcvs} --kcv {c.kek.kcv}",
        f"  forecourt sim hsm form-key --data-dir HSM_DIR --usage {usage} --algorithm"
        f" {c.sign_on.algorithm.value} {source(t + '-sign-on')} {sign_kcvs} --kcv {c.sign_on.kcv}",
        f"then: forecourt keys add-terminal {t} --kek-block S... --kcv {c.kek.kcv}"
        f" --sign-on-block S... --sign-on-kcv {c.sign_on.kcv}",
        "The terminal loads only the KEK components; it derives its sign-on key itself.",
    ]


def add_terminal_command(store: KeyStore, args: argparse.Namespace, actor: str) -> int:
    """A payshield store: the console blocks, or the ceremony that prints components."""
    if args.kek_block:
        t = terminal_from_blocks(store, args, actor)
        print(
            f"terminal {t.terminal_id} registered ({t.algorithm.value}) from console blocks;"
            f" KEK KCV {t.kcv}, sign-on key KCV {t.sign_on_kcv}"
        )
        print(
            "First working keys TAK/TPK/TDK v1 made in the HSM; the terminal gets them at sign-on."
        )
        return 0
    if args.import_components or args.component_file:
        raise CeremonyError(
            "a payshield store takes no clear components: form the KEK at the HSM console"
            " and give --kek-block"
        )
    c = device_kek_ceremony(
        store,
        args.terminal_id,
        Family(args.algorithm),
        custodians=None if args.component_files else Custodians.terminal(),
        component_dir=args.component_files,
    )
    for path in c.files:
        print(f"  {path.name} (mode 0600), for its custodian only")
    for line in console_steps(c):
        print(line)
    return 0
