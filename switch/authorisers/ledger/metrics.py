"""The ledger's metrics, on the switch's registry (`/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["LedgerMetrics"]

_BY_REGISTRY: dict[int, LedgerMetrics] = {}


class LedgerMetrics:
    """Decisions by outcome, flags (odometer backwards, completion short), holds
    released at the end of their window, malformed fields 48/63. Labels `code` and
    `flag` are the ledger's names (docs/accounts.md)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "forecourt_ledger_decisions", "Ledger decisions by outcome", ["code"], registry=registry
        )
        self.flags = Counter(
            "forecourt_ledger_flags", "Ledger flags raised, by flag", ["flag"], registry=registry
        )
        self.released = Counter(
            "forecourt_ledger_holds_released",
            "Pre-authorisation holds released at the end of their window",
            registry=registry,
        )
        self.format_errors = Counter(
            "forecourt_ledger_format_errors",
            "Requests whose field 48 or 63 did not decode (answered 904)",
            registry=registry,
        )

    @classmethod
    def on(cls, registry: CollectorRegistry) -> LedgerMetrics:
        """One set per registry, shared by every ledger entry of a process."""
        found = _BY_REGISTRY.get(id(registry))
        if found is None:
            found = _BY_REGISTRY[id(registry)] = cls(registry)
        return found
