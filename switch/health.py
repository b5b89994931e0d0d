"""What /healthz says: whether this switch can serve, and why not.

Healthy (200) while every listener listens, at least one acquirer link is up and
the journal's last group commit succeeded (and, with a device backend, the
security module answers: docs/hsm.md); otherwise 503. Either way the JSON
names each listener's and link's state and the journal's, so an operator (or
HAProxy's log) sees the reason without reading the switch's log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from forecourt.switch.authoriser import Authoriser


class _Listening(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def up(self) -> bool: ...


class _Journal(Protocol):
    @property
    def commit_failure(self) -> str | None: ...


class _ModuleHealth(Protocol):
    def status(self) -> dict[str, Any]: ...


def link_state(link: Authoriser) -> str:
    """A link's state (LINK_STATES); a kind that keeps none is up or down."""
    state = getattr(link, "state", None)
    if isinstance(state, str):
        return state
    return "up" if link.available else "down"


def health_report(
    listeners: Sequence[_Listening],
    links: Mapping[str, Authoriser],
    journal: _Journal,
    security_module: _ModuleHealth | None = None,
) -> dict[str, Any]:
    reasons: list[str] = []
    listening = {lst.name: "up" if lst.up else "down" for lst in listeners}
    reasons += [f"listener {name} is not listening" for name, s in listening.items() if s != "up"]
    states: dict[str, dict[str, Any]] = {}
    for name, link in links.items():
        entry: dict[str, Any] = {"state": link_state(link), "available": link.available}
        last_error = getattr(link, "last_error", None)
        if isinstance(last_error, str) and not link.available:
            entry["last_error"] = last_error
        states[name] = entry
    if links and not any(link.available for link in links.values()):
        reasons.append(
            "no acquirer link is up: "
            + ", ".join(f"{name} {entry['state']}" for name, entry in states.items())
        )
    failure = journal.commit_failure
    if failure is not None:
        reasons.append(f"journal: the last commit failed ({failure})")
    module = None if security_module is None else security_module.status()
    if module is not None and not module.get("available", True):
        reasons.append(
            f"security module {module.get('backend')} at {module.get('address')} is"
            f" unavailable ({module.get('last_failure')})"
        )
    healthy = not reasons
    extra = {} if module is None else {"security_module": module}
    return {
        "status": "ok" if healthy else "unhealthy",
        "code": 200 if healthy else 503,
        "reasons": reasons,
        "listeners": listening,
        "links": states,
        "journal": {"writable": failure is None, **({"error": failure} if failure else {})},
        **extra,
    }
