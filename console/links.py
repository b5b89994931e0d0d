"""Acquirer and wallet link state, read from the switch's own /healthz and /metrics
over HTTP (the console never shares the switch's memory): whatever the switch
exports with a ``link`` label is shown, so a new kind's metrics appear unasked."""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
from prometheus_client.parser import text_string_to_metric_families

_TIMEOUT_S = 2.0
_STATE = "forecourt_acquirer_link_state"


@attrs.frozen
class LinkView:
    name: str
    state: str
    values: dict[str, float]  # metric (without "forecourt_") -> sum over other labels
    kind: str = ""  # from the configuration: iso8583, wallet, ...


@attrs.frozen
class LinksReport:
    source: str
    reachable: bool
    health_status: int | None = None
    health: Any = None  # the JSON /healthz gives, or its text
    links: tuple[LinkView, ...] = ()
    in_flight: float | None = None
    error: str | None = None


def links_of(text: str) -> tuple[tuple[LinkView, ...], float | None]:
    """Per-link values and the switch's requests in flight, from Prometheus text."""
    states: dict[str, str] = {}
    values: dict[str, dict[str, float]] = {}
    in_flight: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "forecourt_in_flight":
                in_flight = float(sample.value)
            link = sample.labels.get("link")
            if link is None or sample.name.endswith(("_created", "_bucket", "_sum")):
                continue
            if sample.name == _STATE:
                if sample.value == 1:
                    states[link] = sample.labels.get(_STATE, "?")
                values.setdefault(link, {})
                continue
            name = sample.name.removeprefix("forecourt_").removesuffix("_total")
            per_link = values.setdefault(link, {})
            per_link[name] = per_link.get(name, 0.0) + float(sample.value)
    links = tuple(
        LinkView(name, states.get(name, "not reported"), dict(sorted(v.items())))
        for name, v in sorted(values.items())
    )
    return links, in_flight


def with_configured(report: LinksReport, kinds: dict[str, str]) -> LinksReport:
    """Every configured link listed (its kind named), reported by the switch or not."""
    seen = {link.name: link for link in report.links}
    links = [
        attrs.evolve(seen.pop(n, LinkView(n, "not reported", {})), kind=k) for n, k in kinds.items()
    ]
    return attrs.evolve(report, links=(*links, *seen.values()))


async def read_links(host: str, port: int) -> LinksReport:
    """The switch's view of its links; ``reachable=False`` (and why) when it is not."""
    base = f"http://{host}:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=_TIMEOUT_S) as client:
            health = await client.get("/healthz")
            metrics = await client.get("/metrics")
    except httpx.HTTPError as exc:
        return LinksReport(base, False, error=f"{type(exc).__name__}: cannot reach {base}")
    try:
        body: Any = health.json()
    except ValueError:
        body = health.text.strip()
    links, in_flight = links_of(metrics.text) if metrics.status_code == 200 else ((), None)
    return LinksReport(base, True, health.status_code, body, links, in_flight)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
