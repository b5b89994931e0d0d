"""The protocol of anything that can answer a request: an authoriser.

A flow never knows what kind of party answers it. It asks the router for an
authoriser, hands it the request in the authoriser's family, and gets an `Answer`
or one of the typed errors below. The ISO 8583 acquirer link is one kind
(`switch/authorisers/iso8583/`); an in-house account ledger and a wallet provider
over HTTPS are others. A new kind is one class with these members and one entry in
`switch/authorisers/__init__.py`'s table of kinds.

`before_send` is the journal's hook: it gets the request exactly as the party will
see it (the authoriser's own reference in field 11, its field 32) and returns only
once that is durable, together with the reversal parked for it. So whatever the
kind, nothing reaches a party that the journal could not reverse after a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

import attrs
import trio
from forecourt.codecs.family import Family
from forecourt.codecs.message import Message

__all__ = [
    "Answer",
    "Authoriser",
    "AuthoriserBusy",
    "AuthoriserError",
    "AuthoriserKeysUnavailable",
    "AuthoriserTimeout",
    "AuthoriserUnavailable",
    "BeforeSend",
]

BeforeSend = Callable[[Message], Awaitable[None]]


class AuthoriserError(Exception):
    """Base of the reasons an authoriser gave no answer."""


class AuthoriserUnavailable(AuthoriserError):
    """Nothing left the switch: no connection, or the party is down (912/91)."""


class AuthoriserBusy(AuthoriserUnavailable):
    """The authoriser's in-flight cap is reached (912/91 at once, no queueing)."""


class AuthoriserKeysUnavailable(AuthoriserUnavailable):
    """Nothing left the switch: the request's MAC could not be computed in the
    security module (unreachable, or it refused the key). 909/96 to a terminal,
    not 912: the party is not at fault and stand-in is not tried (docs/hsm.md)."""

    def __init__(self, name: str, code: str, *, unavailable: bool) -> None:
        super().__init__(name)
        self.code = code  # the module's error code ("deadline", "connection", "10", ...)
        self.unavailable = unavailable  # ModuleUnavailable: not reached in time


class AuthoriserTimeout(AuthoriserError):
    """The request may have reached the party, and no answer came in time (911/91)."""


@attrs.frozen
class Answer:
    """The party's answer, in the authoriser's family, with its own reference."""

    message: Message
    seconds: float  # from sending to the answer: the party's share of the latency
    reference: str  # what the party knows the request by (the link STAN for ISO 8583)
    flags: tuple[str, ...] = ()  # for the journal row (the ledger's odometer_backwards)


class Authoriser(Protocol):
    """What the switch needs of anything that authorises.

    `family` is the message family the authoriser takes requests in and answers in;
    the flows translate to and from the terminal's. `acquirer_id` is the field 32
    the party expects when the terminal sent none (None: leave it out).
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def family(self) -> Family: ...

    @property
    def acquirer_id(self) -> str | None: ...

    @property
    def available(self) -> bool: ...

    @property
    def request_timeout_s(self) -> float: ...

    @property
    def max_in_flight(self) -> int: ...

    def match_key(self, message: Message) -> Hashable:
        """The key an answer is matched to its request by (in flight, this party)."""
        ...

    async def authorise(
        self,
        request: Message,
        *,
        before_send: BeforeSend | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send `request` and wait for its answer; raises an `AuthoriserError`."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the authoriser's connections (or sessions) up until cancelled."""
        ...
