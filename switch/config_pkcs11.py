"""`[keys.pkcs11]`: which PKCS#11 library and token, and how the user PIN is found.

Read by itself (only `keys.pkcs11`), as `[keys.payshield]` is, so the `[keys]`
reader stays the owner of `[keys] backend`. The switch does not run on the pkcs11
backend yet (docs/hsm.md "The pkcs11 backend"): the table is read and checked, and
the module is built from it by the tests and `bench/keys_bench.py --backend pkcs11`.
"""

from __future__ import annotations

import re

from forecourt.keys.pkcs11_module import DEBIAN_SOFTHSM2, Pkcs11Settings
from forecourt.switch.config_reading import ConfigTable

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def read_pkcs11(keys: ConfigTable) -> Pkcs11Settings | None:
    """The `pkcs11` table of `[keys]`, or None when there is none."""
    present = keys.has("pkcs11")
    t = keys.table("pkcs11")
    if not present:
        return None
    for secret in ("pin", "user_pin", "so_pin"):
        if t.has(secret):
            raise t.error(
                secret, "the PIN never goes in the file: name its environment variable in pin_env"
            )
    pin_env = t.str_("pin_env", "FORECOURT_PKCS11_PIN")
    if not _ENV_NAME.match(pin_env):
        raise t.error("pin_env", "must be an environment variable name, e.g. FORECOURT_PKCS11_PIN")
    settings = Pkcs11Settings(
        library=t.str_("library", DEBIAN_SOFTHSM2),
        token_label=t.str_("token_label", "forecourt"),
        pin_env=pin_env,
        sessions=t.int_("sessions", 4, 1, 64),
        software_pin_translation=t.bool_("software_pin_translation", False),
    )
    if not 1 <= len(settings.token_label) <= 32:
        raise t.error("token_label", "must be 1-32 characters (a PKCS#11 token label)")
    t.finish()
    return settings
