"""The switch's DUKPT side at start: built only when a terminal group has `dukpt`,
with every group's BDK looked up first, so a missing BDK is one line at start
rather than a declined transaction later. It uses the switch's one security
module (switch/module_backend.py), which must be the software one: the payshield
backend has no DUKPT MAC command (docs/hsm.md)."""

from __future__ import annotations

import trio
from forecourt.keys.errors import UnknownKey
from forecourt.keys.security_module import SecurityModule
from forecourt.keys.software_module import SoftwareModule
from forecourt.keys.store import KeyStore
from forecourt.switch.config import SwitchConfig
from forecourt.switch.config_reading import ConfigError
from forecourt.switch.dukpt_terminals import DukptTerminals
from prometheus_client import CollectorRegistry


async def dukpt_terminals_for(
    config: SwitchConfig,
    store: KeyStore,
    registry: CollectorRegistry,
    module: SecurityModule | None = None,
) -> DukptTerminals | None:
    groups = [(i, g) for i, g in enumerate(config.terminal_groups) if g.dukpt is not None]
    if not groups:
        return None
    settings = config.keys.module
    if module is None:
        module = SoftwareModule(store.lmk, initial_key_cache_size=settings.dukpt_initial_key_cache)
    if not isinstance(module, SoftwareModule):
        raise ConfigError(
            f"terminal_groups[{groups[0][0]}].dukpt",
            f'DUKPT terminals need backend = "software": the {module.name} backend has'
            " no DUKPT MAC command (docs/hsm.md)",
            config.source,
        )
    terminals = DukptTerminals(store, module, registry, settings)
    for i, group in groups:
        assert group.dukpt is not None
        try:
            ref = await terminals.bdk(group.dukpt.bdk)
        except UnknownKey:
            raise ConfigError(
                f"terminal_groups[{i}].dukpt_bdk",
                f"no BDK {group.dukpt.bdk!r} in the key store: add it with"
                f" `forecourt keys add-bdk {group.dukpt.bdk} --algorithm ...`",
                config.source,
            ) from None
        if ref.algorithm.is_aes != (group.dukpt.scheme == "aes"):
            raise ConfigError(
                f"terminal_groups[{i}].dukpt",
                f"BDK {group.dukpt.bdk!r} is {ref.algorithm.value}: dukpt ="
                f' "{"aes" if ref.algorithm.is_aes else "tdes"}" goes with it',
                config.source,
            )
    dukpt_groups = {g.name for _, g in groups}
    for i, listener in enumerate(config.listeners):
        if listener.terminal_group in dukpt_groups and listener.dialect != "ifsf":
            raise ConfigError(
                f"listeners[{i}].dialect",
                "a DUKPT terminal group is served on an ifsf listener only (the KSN and"
                " the AES PIN block travel in field 48 or 53; 1987's field 53 is n16)",
                config.source,
            )
    await trio.lowlevel.checkpoint()
    return terminals
