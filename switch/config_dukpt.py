"""DUKPT settings: a terminal group's `dukpt`, `dukpt_bdk`, `ksn_field`, and the
`[keys]` security-module settings (`backend`, the initial-key cache, the
exhaustion warning). Read by small hooks in config_terminals.py and
config_policies.py, so the readers there stay as they were."""

from __future__ import annotations

import attrs
from forecourt.switch.config_reading import ConfigTable

# the backends the switch builds (switch/module_backend.py); `pkcs11` is a backend of
# keys/ the switch does not build yet (docs/hsm.md)
BACKENDS = ("software", "payshield")
DUKPT_SCHEMES = ("aes", "tdes")
# where the KSN travels: ifsf field 48 sub-element 29 (b12 / b10), or field 53 (LL b..48)
KSN_FIELDS = ("48.29", "53")


@attrs.frozen
class DukptGroup:
    """A terminal group of DUKPT PIN pads: which DUKPT, under which BDK, KSN where."""

    scheme: str  # "aes" (X9.24-3-2017) or "tdes" (X9.24-1-2009)
    bdk: str  # the BDK's name in the key store (`forecourt keys add-bdk`)
    ksn_field: str = "48.29"


@attrs.frozen
class ModuleSettings:
    backend: str = "software"
    # initial keys (IPEK / AES initial key) kept per terminal, least recently used out
    dukpt_initial_key_cache: int = 1024
    # a terminal with fewer usable KSN counters left is reported (log line and metric)
    dukpt_exhaustion_warning: int = 10_000


def read_dukpt_group(t: ConfigTable) -> DukptGroup | None:
    """The group's DUKPT settings, or None for a group of KEK/TAK terminals."""
    scheme = t.str_("dukpt", "", ("", *DUKPT_SCHEMES))
    bdk = t.str_("dukpt_bdk", "")
    ksn_field = t.str_("ksn_field", "48.29", KSN_FIELDS)
    if not scheme:
        if bdk:
            raise t.error("dukpt_bdk", 'applies to a DUKPT group only: add dukpt = "aes" or "tdes"')
        return None
    if t.raw("mac_required") is False:
        raise t.error("mac_required", "a DUKPT group MACs every request: the KSN is checked there")
    if not bdk:
        raise t.error(
            "dukpt_bdk", 'a DUKPT group names its BDK (forecourt keys add-bdk NAME), e.g. "bdk1"'
        )
    return DukptGroup(scheme, bdk, ksn_field)


def read_module_settings(t: ConfigTable) -> ModuleSettings:
    """`[keys] backend` and the DUKPT cache settings (from the `[keys]` table)."""
    backend = t.str_("backend", "software")
    if backend == "pkcs11":
        raise t.error(
            "backend",
            '"pkcs11" is not wired into the switch yet: use "software" or "payshield"'
            " (docs/hsm.md)",
        )
    if backend not in BACKENDS:
        raise t.error("backend", f'"{backend}" is not a backend: use "software" or "payshield"')
    if backend == "payshield" and not t.has("payshield"):
        raise t.error(
            "backend",
            '"payshield" needs a [keys.payshield] table naming the HSM (host, port):'
            " conf/examples/payshield.toml",
        )
    return ModuleSettings(
        backend=backend,
        dukpt_initial_key_cache=t.int_("dukpt_initial_key_cache", 1024, 1, 10_000_000),
        dukpt_exhaustion_warning=t.int_("dukpt_exhaustion_warning", 10_000, 0, 1 << 32),
    )
