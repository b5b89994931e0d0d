"""`forecourt sim hsm`: a payment HSM speaking payShield host commands over TCP.

For tests, benchmarks and the demo, where no real payShield exists: key-block LMK
mode, its own LMK (`hsm_keys`), the commands of `hsm_commands`. Each connection
is served in its own task and answers its requests in order; every command is
logged with its name and error code (never a key, PIN block or data). `delay_s`
makes it a slow HSM, for the tests of deadlines and the in-flight cap.
"""

from __future__ import annotations

import collections
import itertools

import attrs
import structlog
import trio
from forecourt.keys.lmk import Lmk
from forecourt.keys.payshield.wire import (
    DEFAULT_HEADER_LENGTH,
    FrameBuffer,
    WireError,
    frame,
    parse_request,
    reply_payload,
    response_code,
)

from .hsm_commands import HsmState, answer

log = structlog.get_logger("forecourt.sim.hsm")


@attrs.frozen
class HsmSimConfig:
    lmk: Lmk = attrs.field(repr=False)
    host: str = "127.0.0.1"
    port: int = 1500
    header_length: int = DEFAULT_HEADER_LENGTH
    disabled: frozenset[str] = frozenset()
    delay_s: float = 0.0
    log_commands: bool = True


class HsmSimulator:
    """Start with `port = await nursery.start(sim.run)`; serves until cancelled."""

    def __init__(self, config: HsmSimConfig) -> None:
        self.config = config
        self.state = HsmState(config.lmk, config.disabled)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.connections_accepted = 0
        self.in_progress = 0
        self.most_in_progress = 0
        self.malformed = 0
        self._numbers = itertools.count(1)
        self._last_malformed_log = -1e9

    async def run(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        port = int(listeners[0].socket.getsockname()[1])
        log.info("hsm_listening", host=self.config.host, port=port, lmk_kcv=self.config.lmk.kcv)
        async with trio.open_nursery() as nursery:
            task_status.started(port)
            await trio.serve_listeners(self._serve, listeners, handler_nursery=nursery)

    async def _serve(self, stream: trio.SocketStream) -> None:
        number = next(self._numbers)
        self.connections_accepted += 1
        frames = FrameBuffer()
        try:
            async with stream:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    for payload in frames.feed(data):
                        await stream.send_all(await self._reply(number, payload))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _reply(self, connection: int, payload: bytes) -> bytes:
        try:
            request = parse_request(payload, self.config.header_length)
            response_code(request.command)
        except WireError:
            self.malformed += 1
            now = trio.current_time()
            if now - self._last_malformed_log >= 1.0:  # at most one line a second
                self._last_malformed_log = now
                log.warning(
                    "hsm_malformed_frame",
                    connection=connection,
                    length=len(payload),
                    malformed_total=self.malformed,
                )
            # no command code to answer with: the connection carries on
            return b""
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)
        try:
            if self.config.delay_s:
                await trio.sleep(self.config.delay_s)
            error, fields = answer(self.state, request.command, request.fields)
        finally:
            self.in_progress -= 1
        self.counts[(request.command, error)] += 1
        if self.config.log_commands:
            log.info("hsm_command", connection=connection, command=request.command, error=error)
        return frame(reply_payload(request, error, fields))

    def counts_by_command(self) -> dict[str, int]:
        out: collections.Counter[str] = collections.Counter()
        for (command, _), n in self.counts.items():
            out[command] += n
        return dict(out)
