"""The flow table: which flow answers a request, by message class and function.

Rows are tried in order, the most specific first. A row matches on the MTI class
(the second digit), whether the message is an advice, the transaction type (field
3 positions 1-2), the network management function (1993 field 24, 1987 field
70) and, where a class carries several messages told apart by what they hold (an
administrative request's function code, field 24), a predicate of the flow's own.
A request that no row matches is answered locally with "function not supported"
and never goes upstream.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_advice, mti_class
from forecourt.codecs.network import NetworkFunction, function_code, network_function
from forecourt.switch.flows import (
    authorisation,
    balance,
    batch_advice,
    batch_trailer,
    cashier,
    completion,
    device_status,
    financial,
    grey_lock,
    grey_result,
    grey_unlock,
    ic_card_check,
    network,
    params,
    reconciliation,
    registration,
    reversal,
    status_query,
    unsupported,
)
from forecourt.switch.flows.base import Flow

# Transaction types (ISO 8583 processing code, positions 1-2) of inquiries.
INQUIRIES = ("30", "31")  # available funds inquiry, balance inquiry


@attrs.frozen
class Row:
    mti_class: str
    flow: Flow
    advice: bool | None = None  # None: requests and advices alike
    transaction_types: tuple[str, ...] = ()  # (): any
    network: NetworkFunction | None = None
    # the flow's own test of the request (e.g. its field 24 function codes); None: any
    when: Callable[[Message], bool] | None = None

    def matches(
        self,
        cls: str,
        advice: bool,
        kind: str,
        function: NetworkFunction | None,
        request: Message,
    ) -> bool:
        return (
            self.mti_class == cls
            and (self.advice is None or self.advice == advice)
            and (not self.transaction_types or kind in self.transaction_types)
            and (self.network is None or self.network is function)
            and (self.when is None or self.when(request))
        )


TABLE: tuple[Row, ...] = (
    Row("1", balance.FLOW, advice=False, transaction_types=INQUIRIES),
    Row("1", authorisation.FLOW, advice=False),
    Row("1", completion.FLOW, advice=True),
    Row("2", balance.FLOW, advice=False, transaction_types=INQUIRIES),
    Row("2", financial.FLOW, advice=False),
    Row("2", batch_advice.FLOW, advice=True, when=batch_advice.in_a_batch),
    Row("2", completion.FLOW, advice=True),
    Row("3", params.FLOW, advice=False, when=params.asks_for_params),
    Row("3", unsupported.FILE_ACTION),
    Row("4", reversal.FLOW),
    Row("5", reconciliation.FLOW),
    Row(
        "6",
        device_status.FLOW,
        advice=True,
        when=lambda m: function_code(m) == device_status.FUNCTION_CODE,
    ),
    # IC fuel cards (docs/terminal-interfaces.md): 1604/1624, function codes 680-683
    Row("6", ic_card_check.FLOW, advice=False, when=lambda m: function_code(m) == "680"),
    Row("6", grey_unlock.FLOW, advice=False, when=lambda m: function_code(m) == "683"),
    Row("6", grey_lock.FLOW, advice=True, when=lambda m: function_code(m) == "681"),
    Row("6", grey_result.FLOW, advice=True, when=lambda m: function_code(m) == "682"),
    Row("6", status_query.FLOW, advice=False, when=status_query.is_status_query),
    Row("6", batch_trailer.FLOW, advice=False, when=batch_trailer.is_batch_trailer),
    Row("6", unsupported.ADMINISTRATIVE),
    Row("8", cashier.SIGN_ON, when=lambda m: function_code(m) == cashier.SIGN_ON_CODE),
    Row("8", cashier.SIGN_OFF, when=lambda m: function_code(m) == cashier.SIGN_OFF_CODE),
    Row("8", registration.FLOW, when=lambda m: function_code(m) == registration.FUNCTION_CODE),
    Row("8", network.SIGN_ON, network=NetworkFunction.SIGN_ON),
    Row("8", network.SIGN_OFF, network=NetworkFunction.SIGN_OFF),
    Row("8", network.KEY_CHANGE, network=NetworkFunction.KEY_CHANGE),
    Row("8", network.ECHO, network=NetworkFunction.ECHO),
)


def _index(table: tuple[Row, ...]) -> dict[tuple[str, bool], tuple[Row, ...]]:
    """The rows that can match each (MTI class, advice), in table order: a lookup per
    request instead of a walk over every row."""
    index: dict[tuple[str, bool], tuple[Row, ...]] = {}
    for row in table:
        for advice in (False, True):
            if row.advice is None or row.advice == advice:
                index[(row.mti_class, advice)] = (*index.get((row.mti_class, advice), ()), row)
    return index


_BY_CLASS = _index(TABLE)


def flow_for(request: Message, table: tuple[Row, ...] = TABLE) -> Flow:
    """The flow that answers `request` (a request or advice, already decoded)."""
    cls = mti_class(request.mti)
    advice = is_advice(request.mti)
    rows = _BY_CLASS.get((cls, advice), ()) if table is TABLE else table
    kind = (request.fields.get("3") or "")[:2]
    function = network_function(request) if cls == "8" else None
    for row in rows:
        if row.matches(cls, advice, kind, function, request):
            return row.flow
    return unsupported.UNKNOWN
