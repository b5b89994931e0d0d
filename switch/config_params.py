"""``[params]``: how terminals download parameter sets (docs/terminal-interfaces.md).

`chunk_bytes` is the most of field 72 one answer carries; every node of a cluster
must use the same, or a terminal moving between nodes mid-download gets chunks cut
differently (it then restarts: docs). `version_cache_s` is how long a node trusts
its last read of the latest version when it answers a sign-on: a publication at
another node reaches sign-on answers within that time.
"""

from __future__ import annotations

import attrs
from forecourt.switch.config_reading import ConfigTable

__all__ = ["ParamsConfig", "read_params"]


@attrs.frozen
class ParamsConfig:
    chunk_bytes: int = 900
    version_cache_s: float = 30.0


def read_params(root: ConfigTable) -> ParamsConfig:
    t = root.table("params")
    config = ParamsConfig(
        chunk_bytes=t.int_("chunk_bytes", 900, 256, 999),
        version_cache_s=t.float_("version_cache_s", 30.0, 0.0, 3600.0),
    )
    t.finish()
    return config
