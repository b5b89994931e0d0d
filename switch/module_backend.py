"""The switch's security module: one per process, built from `[keys] backend`.

Every MAC, sign-on proof and PIN translation of the switch, its SAF sender and its
links goes through this one module (switch/terminal_keys.py holds it for them):

- `software`: `SoftwareModule` under the key store's LMK, in this process (the
  DUKPT terminals use the same instance);
- `payshield`: `PayShieldModule` on the `[keys.payshield]` HSM, opened when the
  switch starts and closed when it stops (its connection pool lives as long as
  the switch), its status in /healthz and /metrics, and asked for its
  diagnostics (NC) every `CHECK_EVERY_S`, so its health is known with no traffic
  and comes back when the HSM does.

docs/hsm.md says which operations each backend can do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
import trio
from forecourt.keys.lmk import Lmk
from forecourt.keys.payshield_module import PayShieldModule
from forecourt.keys.security_module import ModuleError, SecurityModule
from forecourt.keys.software_module import SoftwareModule
from forecourt.switch.config import SwitchConfig

__all__ = ["CHECK_EVERY_S", "device_module", "switch_module", "watch_module"]

log = structlog.get_logger("forecourt.security_module")

CHECK_EVERY_S = 5.0  # NC while the switch runs: one command per period, whatever the load


@asynccontextmanager
async def device_module(config: SwitchConfig) -> AsyncIterator[PayShieldModule | None]:
    """The configured device backend, open for as long as the block runs; None for
    `software` (built from the key store's LMK once the store is open)."""
    if config.keys.module.backend != "payshield":
        yield None
        return
    settings = config.keys.payshield
    assert settings is not None  # the config reader requires [keys.payshield] for it
    async with PayShieldModule(settings) as module:
        yield module


def switch_module(config: SwitchConfig, lmk: Lmk, device: PayShieldModule | None) -> SecurityModule:
    """The process's module: the device when there is one, else the software one."""
    if device is not None:
        return device
    return SoftwareModule(lmk, initial_key_cache_size=config.keys.module.dukpt_initial_key_cache)


async def watch_module(module: SecurityModule, every_s: float = CHECK_EVERY_S) -> None:
    """Ask the module for its diagnostics now and every `every_s`, until cancelled.
    Logged when it first answers or fails and at each change, never per period."""
    state = ""  # "up" or "down" once known
    while True:
        try:
            found = await module.diagnostics()
        except ModuleError as exc:
            if state != "down":
                log.warning("security_module_unavailable", backend=module.name, code=exc.code)
            state = "down"
        else:
            if state != "up":
                log.info(
                    "security_module_answering",
                    backend=module.name,
                    lmk_check=found.lmk_kcv,
                    firmware=found.firmware,
                )
            state = "up"
        await trio.sleep(every_s)
