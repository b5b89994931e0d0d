"""Terminal simulator: runs certification scripts against a switch (or a host).

The simulated terminal holds its KEK, signs on, installs the working keys the
switch delivers (TR-31 blocks in field 96 / 48, unwrapped with the keys
package), MACs its requests and verifies the MAC of every answer. Each case
runs on a fresh connection; keys, STANs and shift totals carry over from case
to case, as they would on a real terminal. The keys are in `terminal_keys`,
the checks of an answer against an expectation in `answer_checks`, what it
remembers of its requests (references, shift totals) in `terminal_history`, the
verdicts and JUnit report in `case_report`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import trio
from forecourt.codecs.dialect import decode
from forecourt.codecs.errors import CodecError
from forecourt.codecs.framing import encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.codecs.split import SplitGroup, with_split_group

from .acquirer_check import expect_at_acquirer
from .answer_checks import Answer, StepFailed, check_answer
from .case_report import CaseResult, write_junit
from .client import ConnectionClosed, HostConnection
from .dukpt_keys import terminal_keys_for
from .field48_steps import with_field48
from .pins import card_pan
from .script import Case, Script, load_script
from .steps import (
    Disconnect,
    Expect,
    ExpectAtAcquirer,
    Expectation,
    ExpectClose,
    ExpectNothing,
    Oversize,
    Raw,
    Reconnect,
    Send,
    Step,
    Wait,
)
from .templates import (
    PROFILES,
    Profile,
    TemplateError,
    TerminalIdentity,
    build,
)
from .terminal_history import TerminalHistory

__all__ = [
    "CaseResult",
    "TerminalSimulator",
    "parse_address",
    "run_script",
    "run_script_sync",
    "write_junit",
]


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """ "host:port" (or a tuple) -> (host, port)."""
    if isinstance(address, tuple):
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"switch address must be HOST:PORT, not {address!r}")
    return host or "127.0.0.1", int(port)


class TerminalSimulator:
    """The state of one simulated terminal across the cases of a script."""

    def __init__(
        self, script: Script, address: tuple[str, int], acquirer_record: Path | None = None
    ) -> None:
        self.script = script
        self.acquirer_record = acquirer_record
        self.settings = script.terminal
        self.address = address
        self.keys = terminal_keys_for(self.settings)
        self.history = TerminalHistory(self.settings.identity.family)
        self._stan = self.settings.stan_start - 1
        self._conn: HostConnection | None = None
        self._backlog: list[Answer] = []
        self._case: Case | None = None
        self._sale_base = secrets.randbelow(10**9)  # split group ids of this run

    # -- running ------------------------------------------------------------------------

    async def run(self, on_case: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
        """Every case in order; `on_case` hears of each as it ends (progress)."""
        results = []
        for case in self.script.cases:
            result = await self.run_case(case)
            results.append(result)
            if on_case is not None:
                on_case(result)
        return results

    async def run_case(self, case: Case) -> CaseResult:
        self._case = case
        started = time.perf_counter()
        done = 0
        reason: str | None = None
        try:
            await self._connect()
            for number, step in enumerate(case.steps, 1):
                try:
                    await self._step(step)
                except StepFailed as exc:
                    reason = f"step {number} ({_kind(step)}): {exc}"
                    break
                except (OSError, ConnectionClosed) as exc:
                    reason = f"step {number} ({_kind(step)}): connection: {exc}"
                    break
                done = number
        except OSError as exc:
            reason = f"cannot connect to {self.address[0]}:{self.address[1]}: {os_reason(exc)}"
        except trio.TooSlowError:
            reason = (
                f"cannot connect to {self.address[0]}:{self.address[1]}: no answer within"
                f" {self.settings.timeout_s:g} s"
            )
        finally:
            await self._disconnect()
            self._case = None
        return CaseResult(case.name, reason is None, time.perf_counter() - started, reason, done)

    async def _connect(self) -> None:
        with trio.fail_after(self.settings.timeout_s):
            self._conn = await HostConnection.open(*self.address, self.settings.wire)
        self._backlog = []

    async def _disconnect(self) -> None:
        if self._conn is not None:
            await self._conn.aclose()
            self._conn = None
        self._backlog = []

    @property
    def conn(self) -> HostConnection:
        if self._conn is None:
            raise StepFailed("not connected (add a reconnect step)")
        return self._conn

    async def _step(self, step: Step) -> None:
        if isinstance(step, Send):
            await self._send(step)
        elif isinstance(step, Expect):
            await self._expect(step.expectation)
        elif isinstance(step, ExpectNothing):
            await self._expect_nothing(step.seconds)
        elif isinstance(step, ExpectClose):
            await self._expect_close(step.within_s)
        elif isinstance(step, Wait):
            await trio.sleep(step.seconds)
        elif isinstance(step, Disconnect):
            await self._disconnect()
        elif isinstance(step, Reconnect):
            await self._disconnect()
            await self._connect()
        elif isinstance(step, Raw):
            await self._raw(step)
        elif isinstance(step, Oversize):
            await self._oversize(step.length)
        elif isinstance(step, ExpectAtAcquirer):
            last = None if self.history.last is None else dict(self.history.last.message.fields)
            await expect_at_acquirer(step, self.acquirer_record, last)

    # -- sending ----------------------------------------------------------------------------

    def _next_stan(self) -> str:
        self._stan = self._stan % 999_999 + 1
        return f"{self._stan:06d}"

    def _identity(self) -> tuple[TerminalIdentity, Profile]:
        case = self._case
        who = self.settings.identity
        profile = PROFILES[self.settings.profile]
        if case is not None:
            who = attrs.evolve(
                who,
                terminal_id=case.terminal_id or who.terminal_id,
                pan=case.pan or who.pan,
                amount=who.amount if case.amount is None else case.amount,
            )
            if case.profile is not None:
                profile = PROFILES[case.profile]
        return who, profile

    async def _send(self, step: Send) -> None:
        if step.stan == "same":
            # A retransmission: the very request sent last, as a terminal repeats it.
            if self.history.last is None:
                raise StepFailed('stan = "same" needs a request sent before it')
            message = self.history.last.message
        else:
            stan = self._next_stan() if step.stan == "next" else step.stan
            who, profile = self._identity()
            try:
                message = build(
                    step.template,
                    who,
                    profile,
                    stan,
                    last_preauth=self.history.last_preauth,
                    last_financial=self.history.last_financial,
                    shift=self.history.shift,
                )
            except TemplateError as exc:
                raise StepFailed(str(exc)) from None
        updates: dict[int, str | None] = {int(k): v for k, v in step.overrides.items()}
        updates.update({int(k): None for k in step.remove})
        if step.pin is not None:
            updates[52] = self.keys.pin_block(step.pin, card_pan(message.with_fields(updates)))
        if updates or step.mti:
            message = message.with_fields(updates, mti=step.mti)
        message = with_field48(message, step.field48)
        if step.split is not None:
            split = step.split
            group_id = split.group or f"{(self._sale_base + (split.sale or 0)) % 10**9:09d}"
            group = SplitGroup(group_id, split.total)
            message = with_split_group(message, group, self.settings.identity.family)
            self.history.split_legs.sent(message.fields.get("11", ""), group_id)
        await self._send_message(self.keys.outgoing(message), step.mac)
        if step.expect is not None:
            await self._expect(step.expect)

    async def _send_message(self, message: Message, mode: str) -> None:
        mac = self.keys.mac_for(message, mode)
        try:
            await self.conn.send(message, mac)
        except CodecError as exc:
            raise StepFailed(f"cannot encode the request: {exc}") from None
        self.history.sent(message)

    async def _raw(self, step: Raw) -> None:
        data = step.data
        if step.framed:
            wire = self.settings.wire
            data = encode_frame(wire.framing, data, wire.tpdu)
        await self.conn.send_raw(data)
        if step.expect is not None:
            await self._expect(step.expect)

    async def _oversize(self, length: int) -> None:
        header = self.settings.wire.framing.header
        if header == "2b":
            head = min(length, 0xFFFF).to_bytes(2, "big")
        elif header == "4a":
            head = b"%04d" % min(length, 9999)
        else:
            head = b""
        await self.conn.send_raw(head + bytes(min(length, 16384)))

    # -- receiving --------------------------------------------------------------------------

    async def _next_answer(self) -> Answer:
        payload = await self.conn.receive_payload()
        try:
            message = decode(self.settings.wire.dialect, payload)
        except CodecError as exc:
            raise StepFailed(f"undecodable answer: {exc}") from None
        answer = Answer(message, payload)
        self._on_answer(answer)
        return answer

    def _on_answer(self, answer: Answer) -> None:
        """Keys delivered, references for completions and reversals, shift totals."""
        message = answer.message
        if message.mti[1] == "8":
            self.keys.install(message)
        self.history.answered(message)

    async def _expect(self, expectation: Expectation) -> None:
        if self.history.last is None and expectation.stan is None:
            raise StepFailed("nothing was sent to expect an answer to")
        stan = expectation.stan
        wanted_mti = expectation.mti
        if stan is None and self.history.last is not None:
            stan = self.history.last.message.fields.get("11")
            if wanted_mti is None:
                wanted_mti = response_mti(self.history.last.message.mti)
        answer = None
        for i, candidate in enumerate(self._backlog):
            if candidate.message.fields.get("11") == stan:
                answer = self._backlog.pop(i)
                break
        with trio.move_on_after(expectation.within_s):
            while answer is None:
                candidate = await self._next_answer()
                if candidate.message.fields.get("11") == stan:
                    answer = candidate
                else:
                    self._backlog.append(candidate)
        if answer is None:
            raise StepFailed(f"no answer for STAN {stan} within {expectation.within_s:g} s")
        check_answer(answer, expectation, wanted_mti, self.keys.accepted())

    async def _expect_nothing(self, seconds: float) -> None:
        with trio.move_on_after(seconds):
            try:
                answer = await self._next_answer()
            except ConnectionClosed:
                return
            raise StepFailed(
                f"unexpected answer {answer.message.mti} STAN {answer.message.fields.get('11')}"
            )

    async def _expect_close(self, within_s: float) -> None:
        with trio.move_on_after(within_s):
            try:
                while True:
                    answer = await self._next_answer()
                    self._backlog.append(answer)
            except ConnectionClosed:
                await self._disconnect()
                return
            except StepFailed:
                pass
        raise StepFailed(f"connection still open after {within_s:g} s")


def _kind(step: Step) -> str:
    if isinstance(step, Send):
        return f"send {step.template}"
    return type(step).__name__.lower()


def os_reason(exc: OSError) -> str:
    """What the system said (trio's "all attempts failed" keeps it in its cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        inner = getattr(seen, "exceptions", None)
        seen = inner[0] if inner else seen.__cause__
    return str(exc) or type(exc).__name__


async def run_script(
    script: Script | str | Path,
    switch_address: str | tuple[str, int] | None = None,
    acquirer_record: Path | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every case of a script against a switch; one CaseResult per case, in order.
    `acquirer_record`: the acquirer simulator's record file, for `expect_at_acquirer`."""
    if not isinstance(script, Script):
        script = load_script(script)
    address = switch_address or script.terminal.switch
    if address is None:
        raise ValueError("no switch address: give one or set terminal.switch in the script")
    return await TerminalSimulator(script, parse_address(address), acquirer_record).run(on_case)


def run_script_sync(
    script: Script | str | Path,
    switch_address: str | tuple[str, int] | None = None,
    acquirer_record: Path | None = None,
) -> list[CaseResult]:
    """`run_script` for callers outside trio (the CLI, the demo)."""
    return trio.run(run_script, script, switch_address, acquirer_record)
