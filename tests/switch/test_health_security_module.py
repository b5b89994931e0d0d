"""The payshield backend's status in /healthz's report and in /metrics, against the
HSM simulator over real TCP: up while it answers, a reason and 503 when it is gone,
errors counted by code."""

from __future__ import annotations

import pytest
import trio
from forecourt.keys.security_module import ModuleError, ModuleUnavailable
from forecourt.switch.health import health_report
from forecourt.switch.metrics_hsm import register_security_module
from prometheus_client import CollectorRegistry, generate_latest

from tests.keys.payshield_rig import module_for, running_sim


class _Journal:
    """The journal's one health attribute (the journal itself is not under test)."""

    commit_failure: str | None = None


async def test_healthz_and_metrics_follow_the_hsm(nursery: trio.Nursery) -> None:
    registry = CollectorRegistry()
    async with running_sim(nursery, disabled=frozenset({"B2"})) as rig:
        hsm = module_for(rig.port, timeout_s=0.5)
        register_security_module(registry, hsm.status)
        await hsm.diagnostics()
        with pytest.raises(ModuleError) as disabled:
            await hsm.echo(b"x")
        assert disabled.value.code == "68"
        report = health_report([], {}, _Journal(), hsm)
        assert report["code"] == 200
        module = report["security_module"]
        assert module["connected"] == 1 and module["errors"] == {"68": 1}
        assert module["last_diagnostics"]["firmware"] == "1500-FCSM"
        text = generate_latest(registry).decode()
        assert 'forecourt_security_module_up{backend="payshield"} 1.0' in text
        assert 'forecourt_security_module_errors_total{backend="payshield",code="68"} 1.0' in text
        assert 'forecourt_security_module_commands_total{backend="payshield"} 2.0' in text
    await trio.sleep(0.05)
    with pytest.raises(ModuleUnavailable):
        await hsm.diagnostics()  # the HSM closed the pooled connection and is not listening
    report = health_report([], {}, _Journal(), hsm)
    assert report["code"] == 503
    assert any("security module payshield" in r for r in report["reasons"])
    text = generate_latest(registry).decode()
    assert 'forecourt_security_module_up{backend="payshield"} 0.0' in text
    assert "unavailable" in text
    # without a device backend the report is as it was
    assert "security_module" not in health_report([], {}, _Journal())
