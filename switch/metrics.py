"""Prometheus metrics, and the endpoint that serves them with /healthz.

Each ``SwitchMetrics`` has its own ``CollectorRegistry`` (never the global one),
so tests and several switches in one process do not collide. The endpoint is a
Starlette application served by hypercorn's trio worker (`metrics_endpoint`):
GET or HEAD of /metrics and /healthz, nothing else.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import Enum as EnumMetric

# 0.1 ms .. 10 s: the switch adds well under a millisecond, hosts take 100 ms .. seconds.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

LINK_STATES = ("down", "connecting", "signing_on", "up", "draining")


class SwitchMetrics:
    """Every metric the switch exports, on a dedicated registry.

    Labels: ``direction`` from_terminal | to_terminal | to_acquirer | from_acquirer;
    ``side`` terminal | acquirer; ``link`` acquirer link name; ``listener`` name.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._message_children: dict[tuple[str, str, str], Counter] = {}
        self._host_latency_children: dict[str, Histogram] = {}
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.messages = Counter(
            "forecourt_messages",
            "ISO 8583 messages by direction, MTI and action code",
            ["direction", "mti", "action_code"],
            registry=r,
        )
        self.switch_latency = Histogram(
            "forecourt_switch_latency_seconds",
            "Time the switch adds to a transaction (total minus host time)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.host_latency = Histogram(
            "forecourt_host_latency_seconds",
            "Acquirer host round trip",
            ["link"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "forecourt_in_flight", "Terminal requests being processed", registry=r
        )
        self.connections = Gauge(
            "forecourt_connections", "Open terminal connections", ["listener"], registry=r
        )
        self.connections_refused = Counter(
            "forecourt_connections_refused",
            "Terminal connections refused at accept (reason: max_connections, per_address)",
            ["listener", "reason"],
            registry=r,
        )
        self.connections_closed = Counter(
            "forecourt_connections_closed",
            "Terminal connections the switch closed (reason: first_frame_timeout)",
            ["listener", "reason"],
            registry=r,
        )
        self.reads_paused = Counter(
            "forecourt_connection_reads_paused",
            "Times a connection's reader waited: max_in_flight_per_connection reached",
            ["listener"],
            registry=r,
        )
        self.idle_closed = Counter(
            "forecourt_idle_closed", "Terminal connections closed for idleness", registry=r
        )
        self.link_state = EnumMetric(
            "forecourt_acquirer_link_state",
            "Acquirer link state",
            ["link"],
            states=list(LINK_STATES),
            registry=r,
        )
        self.link_connections = Gauge(
            "forecourt_acquirer_link_connections",
            "Open connections of an acquirer link",
            ["link"],
            registry=r,
        )
        self.tls_handshake_failures = Counter(
            "forecourt_acquirer_tls_handshake_failures",
            "TLS handshakes with an acquirer host that failed, by reason",
            ["link", "reason"],
            registry=r,
        )
        self.wallet_unverified_answers = Counter(
            "forecourt_wallet_unverified_answers",
            "Wallet provider answers refused: signature absent, wrong or stale",
            ["link", "operation"],
            registry=r,
        )
        self.host_timeouts = Counter(
            "forecourt_host_timeouts",
            "Requests the host did not answer in time",
            ["link"],
            registry=r,
        )
        self.unmatched_answers = Counter(
            "forecourt_unmatched_answers",
            "Host answers that matched no request (late or unknown)",
            ["link", "kind"],
            registry=r,
        )
        self.saf_depth = Gauge(
            "forecourt_saf_depth",
            "Store-and-forward items not yet delivered",
            ["link"],
            registry=r,
        )
        self.stand_in_approvals = Counter(
            "forecourt_stand_in_approvals",
            "Purchases the switch approved itself, the acquirer being unavailable",
            ["link", "verification"],
            registry=r,
        )
        self.stand_in_advices = Counter(
            "forecourt_stand_in_advices_delivered",
            "Advices of stand-in approvals the host acknowledged",
            ["link"],
            registry=r,
        )
        self.saf_flagged = Gauge(
            "forecourt_saf_flagged", "Store-and-forward items given up on", registry=r
        )
        self.mac_failures = Counter(
            "forecourt_mac_failures", "MAC verification failures", ["side"], registry=r
        )
        self.malformed = Counter(
            "forecourt_malformed_frames",
            "Frames that could not be used",
            ["side", "reason"],
            registry=r,
        )
        self.rejections = Counter(
            "forecourt_rejections",
            "Requests refused by the switch itself",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "forecourt_duplicates", "Duplicate terminal requests", ["kind"], registry=r
        )
        self.duplicate_lookups = Counter(
            "forecourt_duplicate_journal_lookups",
            "Duplicate checks the in-memory window could not answer alone (the journal was"
            " asked): why = cluster (another node may have it), beyond_window (too small),"
            " batch (an advice of a batch upload)",
            ["why"],
            registry=r,
        )
        self.journal_commits = Counter(
            "forecourt_journal_commits", "Journal group commits", registry=r
        )
        self.gc_pause_seconds = Histogram(
            "forecourt_gc_pause_seconds",
            "Cyclic garbage collections: the event loop stands still meanwhile",
            ["generation"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self._gc_children: dict[int, Histogram] = {}
        self.journal_batch_writes = Histogram(
            "forecourt_journal_batch_writes",
            "Writes (one per durable step of a transaction) per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        self.journal_commit_seconds = Histogram(
            "forecourt_journal_commit_seconds",
            "From handing a group commit to the database thread to its result, fsync included",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        # parameter downloads answered, by 48-23 status (docs/terminal-interfaces.md)
        self.params_downloads = Counter(
            "forecourt_params_downloads",
            "Parameter download chunks answered, by status (N none, D delta, F full, R restart)",
            ["status"],
            registry=r,
        )
        # batch upload and status query (docs/terminal-interfaces.md)
        self.batch_trailers = Counter(
            "forecourt_batch_trailers",
            "Batch trailers answered, by result: in_balance, out_of_balance",
            ["result"],
            registry=r,
        )
        self.batch_advices = Histogram(
            "forecourt_batch_advices",
            "Advices the journal holds for a batch when its trailer is answered",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.status_queries = Counter(
            "forecourt_status_queries",
            "Status queries answered, by the original's state: A, D, R, P, U",
            ["answered"],
            registry=r,
        )

    def gc_pause(self, generation: int, seconds: float) -> None:
        child = self._gc_children.get(generation)
        if child is None:
            child = self._gc_children[generation] = self.gc_pause_seconds.labels(
                generation=str(generation)
            )
        child.observe(seconds)

    def journal_batch(self, writes: int, seconds: float) -> None:
        self.journal_commits.inc()
        self.journal_batch_writes.observe(writes)
        self.journal_commit_seconds.observe(seconds)

    def count_message(self, direction: str, mti: str, action_code: str | None = None) -> None:
        self.message_counter(direction, mti, action_code or "").inc()

    def message_counter(self, direction: str, mti: str, action_code: str) -> Counter:
        """The labelled counter child, cached (``labels()`` costs more than ``inc()``)."""
        key = (direction, mti, action_code)
        child = self._message_children.get(key)
        if child is None:
            child = self.messages.labels(direction=direction, mti=mti, action_code=action_code)
            if len(self._message_children) < 10_000:  # bounded whatever MTIs and codes arrive
                self._message_children[key] = child
        return child

    def host_latency_of(self, authoriser: str) -> Histogram:
        child = self._host_latency_children.get(authoriser)
        if child is None:  # bounded: authorisers are configured
            child = self._host_latency_children[authoriser] = self.host_latency.labels(
                link=authoriser
            )
        return child

    def set_link_state(self, link: str, state: str) -> None:
        self.link_state.labels(link=link).state(state)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
