"""`forecourt demo`'s part for conf/cert/10-status-batch.toml: the status query and
batch upload script's own terminal, registered with the test KEK like the others
(scripts run side by side, so its STANs and batches are its own)."""

from __future__ import annotations

STATUS_BATCH_TERMINALS = ("T0000010",)
