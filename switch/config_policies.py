"""The single-table sections: ``[journal]``, ``[keys]``, ``[saf]``, ``[reversal]``,
``[metrics]`` and ``[logging]``.

Each is optional and every key has a default, so a small configuration names only
its listeners, groups, acquirers and routes; what is set is still range-checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
from forecourt.keys.payshield_module import PayShieldSettings
from forecourt.keys.pkcs11_module import Pkcs11Settings
from forecourt.switch.config_dukpt import ModuleSettings, read_module_settings
from forecourt.switch.config_payshield import read_payshield
from forecourt.switch.config_pkcs11 import read_pkcs11
from forecourt.switch.config_reading import ConfigTable

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "SYNCHRONOUS_MODES",
    "JournalConfig",
    "KeysConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ReversalConfig",
    "SafConfig",
    "read_journal",
    "read_keys",
    "read_logging",
    "read_metrics",
    "read_reversal",
    "read_saf",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")
SYNCHRONOUS_MODES = ("full", "normal")


@attrs.frozen
class SafConfig:
    """Store-and-forward retry policy for reversals and advices."""

    max_attempts: int = 6
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 300.0
    in_flight_share: float = 0.25  # share of a link's max_in_flight SAF may use
    lease_s: float = 60.0  # a claimed item returns to the queue after this

    def backoff(self, attempts: int) -> float:
        """Delay before the next attempt after ``attempts`` failed sends (doubling)."""
        if attempts <= 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** (attempts - 1))


@attrs.frozen
class ReversalConfig:
    on_disconnect: bool = True  # reverse in-flight authorisations when the terminal drops
    preauth_completion_window_s: float = 1800.0
    # how long an approved transaction stays reversible from the switch (its sealed
    # reversal kept in SAF): terminal gone, operator reversal; then it is erased
    hold_approved_s: float = 900.0


@attrs.frozen
class KeysConfig:
    """Working-key policy (how long a replaced key is still accepted, how old a key
    may be) and where the LMK lives: outside the data directory, so a backup of
    the data directory cannot open the keys and sealed SAF records it holds."""

    grace_s: float = 300.0
    max_age_s: float = 86400.0
    # sign-ons and key changes that rotate one terminal's keys, per minute and node
    rotations_per_minute: int = 6
    # a sign-on's field 7 within this of the switch's clock, its proof taken once (0: off)
    sign_on_window_s: float = 600.0
    # None: $FORECOURT_LMK, else the file `forecourt keys init --lmk-file` recorded
    lmk_file: Path | None = None
    allow_lmk_in_data_dir: bool = False  # demos only
    # the security module and its DUKPT settings (switch/config_dukpt.py)
    module: ModuleSettings = attrs.field(factory=ModuleSettings)
    payshield: PayShieldSettings | None = None  # [keys.payshield] (switch/config_payshield.py)
    pkcs11: Pkcs11Settings | None = None  # [keys.pkcs11] (switch/config_pkcs11.py)


@attrs.frozen
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = no metrics endpoint

    @property
    def enabled(self) -> bool:
        return self.port != 0


@attrs.frozen
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@attrs.frozen
class JournalConfig:
    """Group-commit tuning; see docs/journal.md."""

    synchronous: str = "full"
    max_pending: int = 4096  # queued writes before writers wait (back-pressure)
    max_batch: int = 1024  # writes per commit at most
    # finished requests kept in memory to answer retransmissions (and warmed at start)
    duplicate_window: int = 200_000


def read_metrics(root: ConfigTable) -> MetricsConfig:
    t = root.table("metrics")
    metrics = MetricsConfig(
        host=t.str_("host", "127.0.0.1"), port=t.port(default=0, allow_zero=True)
    )
    t.finish()
    return metrics


def read_logging(root: ConfigTable) -> LoggingConfig:
    t = root.table("logging")
    logging = LoggingConfig(
        level=t.str_("level", "info", LOG_LEVELS), format=t.str_("format", "auto", LOG_FORMATS)
    )
    t.finish()
    return logging


def read_journal(root: ConfigTable) -> JournalConfig:
    t = root.table("journal")
    journal = JournalConfig(
        synchronous=t.str_("synchronous", "full", SYNCHRONOUS_MODES),
        max_pending=t.int_("max_pending", 4096, 1, 1_000_000),
        max_batch=t.int_("max_batch", 1024, 1, 100_000),
        # any size is safe: what the window has let go of, the journal is asked about
        duplicate_window=t.int_("duplicate_window", 200_000, 1, 10_000_000),
    )
    t.finish()
    return journal


def read_saf(root: ConfigTable) -> SafConfig:
    t = root.table("saf")
    saf = SafConfig(
        max_attempts=t.int_("max_attempts", 6, 1, 1000),
        backoff_initial_s=t.float_("backoff_initial_s", 5.0, 0.01, 86400.0),
        backoff_max_s=t.float_("backoff_max_s", 300.0, 0.01, 86400.0),
        in_flight_share=t.float_("in_flight_share", 0.25, 0.01, 1.0),
        lease_s=t.float_("lease_s", 60.0, 1.0, 86400.0),
    )
    if saf.backoff_max_s < saf.backoff_initial_s:
        raise t.error("backoff_max_s", "must not be less than backoff_initial_s")
    t.finish()
    return saf


def read_reversal(root: ConfigTable) -> ReversalConfig:
    t = root.table("reversal")
    reversal = ReversalConfig(
        on_disconnect=t.bool_("on_disconnect", True),
        preauth_completion_window_s=t.float_(
            "preauth_completion_window_s", 1800.0, 1.0, 30 * 86400.0
        ),
        hold_approved_s=t.float_("hold_approved_s", 900.0, 300.0, 7 * 86400.0),
    )
    t.finish()
    return reversal


def read_keys(root: ConfigTable, resolve: Callable[[str], Path] = Path) -> KeysConfig:
    """`[keys]`; `resolve` makes a relative `lmk_file` relative to the config file."""
    t = root.table("keys")
    lmk_file = t.opt_str("lmk_file")
    keys = KeysConfig(
        grace_s=t.float_("grace_s", 300.0, 0.0, 7 * 86400.0),
        max_age_s=t.float_("max_age_s", 86400.0, 60.0, 365 * 86400.0),
        rotations_per_minute=t.int_("rotations_per_minute", 6, 1, 1000),
        sign_on_window_s=t.float_("sign_on_window_s", 600.0, 0.0, 86400.0),
        lmk_file=resolve(lmk_file) if lmk_file else None,
        allow_lmk_in_data_dir=t.bool_("allow_lmk_in_data_dir", False),
        module=read_module_settings(t),
        payshield=read_payshield(t),
        pkcs11=read_pkcs11(t),
    )
    t.finish()
    return keys
