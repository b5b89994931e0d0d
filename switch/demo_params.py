"""The demo's parameter sets: conf/demo/params-1.toml and params-2.toml, published
as versions 1 and 2 before the certification scripts run.

`conf/cert/12-params.toml` (terminal T0000012) downloads them: the whole set in
chunks (the demo's `[params] chunk_bytes` is the smallest allowed, 256, so it
takes three), the one-chunk delta from version 1, a download whose target is
outdated (restarted), and a terminal already current. A kept `--data-dir` that
already holds versions is left as it is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from forecourt.switch.config import SwitchConfig
from forecourt.switch.journal import open_journal
from forecourt.switch.params import ParamsLatest, ParamsPublish
from forecourt.switch.params.layout import read_params_file

__all__ = ["PARAMS_TERMINAL", "params_section", "publish_demo_params"]

PARAMS_TERMINAL = "T0000012"
_FILES = ("params-1.toml", "params-2.toml")


def params_section() -> dict[str, Any]:
    """The demo's `[params]`: small chunks, so a download takes several."""
    return {"chunk_bytes": 256}


async def publish_demo_params(config: SwitchConfig, conf: Path) -> None:
    files = [read_params_file(conf / "demo" / name) for name in _FILES]
    async with open_journal(config) as journal:
        (latest,) = await journal.write(ParamsLatest())
        if latest != 0:
            return
        for parsed in files:
            await journal.write(ParamsPublish(parsed.params, "demo", parsed.note, time.time()))
