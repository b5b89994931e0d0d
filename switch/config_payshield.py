"""`[keys.payshield]`: where the payShield is and how the switch talks to it.

Read by itself (only `keys.payshield`), so the `[keys]` reader stays the owner of
`[keys] backend`; the settings apply when `backend = "payshield"` (docs/hsm.md).
"""

from __future__ import annotations

from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.switch.config_reading import ConfigTable


def read_payshield(keys: ConfigTable) -> PayShieldSettings | None:
    """The `payshield` table of `[keys]`, or None when there is none."""
    present = keys.has("payshield")
    t = keys.table("payshield")
    if not present:
        return None
    settings = PayShieldSettings(
        host=t.str_("host", "127.0.0.1"),
        port=t.port("port", default=1500),
        header_length=t.int_("header", 4, 1, 32),
        connections=t.int_("connections", 4, 1, 256),
        in_flight=t.int_("in_flight", 32, 1, 4096),
        timeout_s=t.float_("timeout_s", 2.0, 0.01, 60.0),
    )
    t.finish()
    return settings
