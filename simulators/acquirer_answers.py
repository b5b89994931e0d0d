"""The acquirer simulator's answers: a decision made into an encoded response.

Answers echo the request's identifying fields, add what the decision says (39,
38), make an RRN when the request had none, deliver
terminal keys when standing in for a switch, and are MAC'd under the key the
request came under.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping

from forecourt.codecs.dialect import Dialect, encode, encode_with_mac, identify
from forecourt.codecs.errors import CodecError
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_request, response_mti

from .acquirer_keys import HostKeys
from .rules import Decision, HostLogic

__all__ = ["ECHOED", "AnswerBuilder"]

# Request fields an answer carries back unchanged.
ECHOED = ("3", "4", "7", "11", "12", "13", "24", "32", "37", "41", "42", "49", "70")


class AnswerBuilder:
    """Encodes the answer to each request of one host."""

    def __init__(
        self, dialect: Dialect, logic: HostLogic, keys: HostKeys, generate_mac: bool
    ) -> None:
        self._dialect = dialect
        self._logic = logic
        self._keys = keys
        self._generate_mac = generate_mac
        self._rrn = itertools.count(int(time.time()) % 100_000 * 10_000_000)
        self.format_code = logic.code("format_error")
        # told each answer's fields (the settlement file, acquirer_settlement.py)
        self.on_answer: Callable[[Message, Mapping[str, str]], None] | None = None

    def answer(
        self,
        request: Message,
        decision: Decision,
        extra: Mapping[str, str] | None = None,
        *,
        refused: bool = False,
    ) -> bytes:
        """The encoded answer; `refused` (a MAC or proof that does not hold): no keys.
        `extra`: fields the answer adds (a reconciliation answer's totals)."""
        fields = request.fields
        out = {k: fields[k] for k in ECHOED if k in fields}
        if extra:
            out.update(extra)
        cls = request.mti[1]
        if cls in "12" and "37" not in out:
            out["37"] = f"{next(self._rrn) % 1_000_000_000_000:012d}"
        if decision.code is not None:
            out["39"] = decision.code
        if decision.approval_code is not None:
            out["38"] = decision.approval_code
        self._logic.remember_reference(request, out)
        if self.on_answer is not None:
            self.on_answer(request, out)
        key, _ = self._keys.mac_key(request)
        if cls == "8" and self._keys.stands_in_for_switch:
            if not refused:
                self._keys.deliver(request, out)
            key = None  # a switch does not MAC its network answers
        message = Message(response_mti(request.mti), out)
        if key is not None and self._generate_mac:
            return encode_with_mac(self._dialect, message, key.generate)
        return encode(self._dialect, message)

    def undecodable(
        self, payload: bytes
    ) -> tuple[bytes | None, str | None, str | None, str | None]:
        """(904 / 30 answer, MTI, field 41, field 11) of a request that does not decode.

        The answer is None (the connection is closed instead) when not even the MTI
        and STAN of a request can be read, or the answer cannot be encoded.
        """
        mti, terminal_id, stan = identify(self._dialect, payload)
        if mti is None or stan is None or not mti.isdigit() or not is_request(mti):
            return None, mti, terminal_id, stan
        fields = {"11": stan}
        if terminal_id is not None:
            fields["41"] = terminal_id
        message = Message(response_mti(mti), {**fields, "39": self.format_code})
        try:
            return encode(self._dialect, message), mti, terminal_id, stan
        except CodecError:
            return None, mti, terminal_id, stan
