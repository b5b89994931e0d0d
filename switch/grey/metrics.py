"""The grey records' metrics, on the switch's registry (`/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GreyMetrics"]

_BY_REGISTRY: dict[int, GreyMetrics] = {}


class GreyMetrics:
    """Open and flagged grey records (read from the journal each check round, so
    every node shows the cluster's count), unlocks by instruction, IC messages by
    flow and outcome, TAC checks failed and malformed IC messages."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Gauge(
            "forecourt_grey_records",
            "Grey records not closed, by state (open, flagged for manual handling)",
            ["state"],
            registry=registry,
        )
        self.unlocks = Counter(
            "forecourt_grey_unlocks",
            "Unlock requests answered, by outcome (complete, clear, repeat, declined)",
            ["outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "forecourt_ic_card_messages",
            "IC card messages answered, by flow and outcome",
            ["flow", "outcome"],
            registry=registry,
        )
        self.tac_failures = Counter(
            "forecourt_grey_tac_failures",
            "Grey-lock notifications and results whose TAC did not verify (declined 129)",
            registry=registry,
        )
        self.format_errors = Counter(
            "forecourt_ic_card_format_errors",
            "IC card messages missing or malforming a field they need (answered 904)",
            registry=registry,
        )

    @classmethod
    def on(cls, registry: CollectorRegistry) -> GreyMetrics:
        """One set per registry."""
        found = _BY_REGISTRY.get(id(registry))
        if found is None:
            found = _BY_REGISTRY[id(registry)] = cls(registry)
        return found
