"""A station terminal's standing beyond its keys: the cashier signed on, its online
registration with a one-time activation code, and its devices' last reported state
(docs/terminal-interfaces.md). Their tables are a journal domain of their own."""

from __future__ import annotations

from .apply import apply_terminals
from .ops import TERMINAL_OPS, TerminalOp

__all__ = ["TERMINAL_OPS", "TerminalOp", "apply_terminals"]
