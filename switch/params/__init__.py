"""Versioned parameter sets for terminals: products and prices, card limits, the BIN
and route table for offline use, block and grey lists, receipt texts.

Operators publish them (`forecourt params`, switch/params_cli.py); they live in the
journal's database (`ops`, applied by `apply_params`), so every node serves the
same versions; terminals download what changed since their version with a file
action (switch/flows/params.py). See docs/terminal-interfaces.md.
"""

from __future__ import annotations

from .model import KINDS, Change, Delta, Kind, ParamSet, VersionInfo, apply_delta, delta_between
from .ops import (
    PARAMS_OPS,
    ParamsLatest,
    ParamsOp,
    ParamsPublish,
    ParamsStates,
    ParamsUnchanged,
    ParamsVersions,
    Published,
)
from .store import apply_params

__all__ = [
    "KINDS",
    "PARAMS_OPS",
    "Change",
    "Delta",
    "Kind",
    "ParamSet",
    "ParamsLatest",
    "ParamsOp",
    "ParamsPublish",
    "ParamsStates",
    "ParamsUnchanged",
    "ParamsVersions",
    "Published",
    "VersionInfo",
    "apply_delta",
    "apply_params",
    "delta_between",
]
