"""What a load run shows its operator: a live progress bar on a terminal, the report
table at the end, and the one line that says why nothing was approved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ProgressBar", "nothing_approved", "print_report"]


def nothing_approved(result: Any, switch: str) -> str:
    """The one line that says why a load run approved nothing."""
    if result.connections_failed and not result.answered:
        return (
            f"no request was approved: {result.connections_failed} connections to {switch}"
            " failed (is the switch running there? check --switch)"
        )
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(result.by_action_code.items())) or "none"
    return (
        f"no request was approved ({result.answered} answered, action codes {codes};"
        f" {result.timeouts} timeouts): check the terminals' keys (--mac) and registration,"
        " or pass --allow-no-approvals"
    )


class ProgressBar:
    """A rich progress bar (sent, answered, rate, p99 so far), or nothing when not a TTY."""

    def __init__(self, live: bool, duration: float) -> None:
        self.live = live
        self.duration = duration
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressBar:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("load"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("load", total=self.duration, info="")
        return self

    def update(self, sent: int, answered: int, p99_ms: float, elapsed: float) -> None:
        if self._progress is None:
            return
        rate = answered / elapsed if elapsed > 0 else 0.0
        info = f"sent {sent}  answered {answered}  {rate:,.0f}/s  p99 {p99_ms:.1f} ms"
        self._progress.update(self._task, completed=min(elapsed, self.duration), info=info)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="load", show_header=False)
    latency = report["latency_ms"]
    rows: Sequence[tuple[str, str]] = (
        ("duration", f"{report['duration_s']} s"),
        ("sent / answered", f"{report['sent']} / {report['answered']}"),
        ("throughput", f"{report['throughput_per_s']:,.1f} /s"),
        ("latency p50 / p90", f"{latency['p50_ms']:.3f} / {latency['p90_ms']:.3f} ms"),
        ("latency p99 / p99.9", f"{latency['p99_ms']:.3f} / {latency['p999_ms']:.3f} ms"),
        ("latency max", f"{latency['max_ms']:.3f} ms"),
        ("action codes", ", ".join(f"{k}: {v}" for k, v in report["by_action_code"].items())),
        ("approved", str(report["approved"])),
        ("timeouts / errors", f"{report['timeouts']} / {report['errors']}"),
        ("connections failed", str(report["connections_failed"])),
    )
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
