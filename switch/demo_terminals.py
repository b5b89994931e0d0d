"""The demo's set-up for conf/cert/11-operators.toml: a terminal pending its online
registration, with the script's activation code.

The certification terminal holds the test KEK like the others (the key ceremony,
`forecourt keys add-terminal`); here it is also made pending, as `forecourt terminals
add-pending` does, but with a fixed code the script can carry. A live code is
random and printed once; this one is test only, like the test KEK.
"""

from __future__ import annotations

from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import open_journal
from forecourt.switch.terminals.registration import add_pending

OPERATOR_TERMINAL = "T0000011"
ACTIVATION_CODE = "CERT11ACT1VATE00"  # test only: conf/cert/11-operators.toml sends it


async def prepare_registration(config: SwitchConfig) -> None:
    """Make the script's terminal pending (again, with a kept data directory)."""
    async with open_journal(config) as journal:
        await add_pending(
            journal, OPERATOR_TERMINAL, expires_in_s=3600.0, actor="demo", code=ACTIVATION_CODE
        )
