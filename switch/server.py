"""The switch process: listeners, sessions, acquirer links, journal and metrics.

One nursery tree: `run_switch` owns the journal, the links, the metrics endpoint
and one nursery per listener; each session owns the tasks of its requests. Draining
stops the listeners, stops every session reading, lets the requests in hand finish
(bounded), then closes links and flushes the journal.
"""

from __future__ import annotations

import functools
import math

import attrs
import structlog
import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from forecourt.codecs.dialect import get_dialect
from forecourt.keys.errors import UnknownOwner
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyPolicy
from forecourt.keys.payshield_module import PayShieldModule
from forecourt.keys.security_module import SecurityModule
from forecourt.keys.store import KeyStore
from forecourt.switch.authorisers import AuthoriserDeps, build_authorisers
from forecourt.switch.config import ConfigError, ListenerConfig, SwitchConfig
from forecourt.switch.context import ListenerContext, PipelineSettings, TerminalPolicy
from forecourt.switch.day.closer import business_day_task
from forecourt.switch.dukpt_setup import dukpt_terminals_for
from forecourt.switch.gc_quiet import keep_gc_quiet
from forecourt.switch.grey.service import build_ic_cards
from forecourt.switch.health import health_report
from forecourt.switch.instance_lock import InstanceLock, instance_held
from forecourt.switch.journal import open_journal
from forecourt.switch.listener import Listener, ListenerUnavailable
from forecourt.switch.matching import TerminalRequests
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.metrics_endpoint import serve_metrics
from forecourt.switch.metrics_hsm import register_security_module
from forecourt.switch.module_backend import device_module, switch_module, watch_module
from forecourt.switch.params.catalogue import ParamsCatalogue
from forecourt.switch.pipeline import Pipeline
from forecourt.switch.recovery import recover
from forecourt.switch.saf import SafSender
from forecourt.switch.stand_in import StandInPolicy
from forecourt.switch.takeover import run_takeover, takeover_threshold
from forecourt.switch.terminal_keys import KeyringCache
from forecourt.switch.tls import TlsContexts

__all__ = [
    "Listener",
    "ListenerUnavailable",
    "RunningSwitch",
    "drain_deadline",
    "listener_context",
    "run_switch",
    "saf_data_key",
]

log = structlog.get_logger("forecourt.server")


@attrs.frozen
class RunningSwitch:
    """What a started switch tells its owner (tests, the demo)."""

    ports: dict[str, int]
    metrics_port: int | None


async def _load_zone_keys(config: SwitchConfig, keys: KeyringCache) -> None:
    """Each MAC'd link's ZAK; a link the key store does not know is the operator's to fix."""
    for i, acquirer in enumerate(config.acquirers):
        if acquirer.kind != "iso8583" or not acquirer.mac:  # only ISO 8583 links MAC
            continue
        try:
            ring = await keys.keyring(acquirer.name)
        except UnknownOwner:
            raise ConfigError(
                f"acquirers[{i}].mac",
                f"no ZAK for {acquirer.name!r} in the key store: register it with "
                f"`forecourt keys add-acquirer {acquirer.name}`, or set mac = false",
                config.source,
            ) from None
        ref = ring.current.ref if ring.current is not None else None
        if ref is not None and ref.backend != keys.module.name:
            raise ConfigError(
                "keys.backend",
                f"the ZAK of {acquirer.name!r} is a {ref.backend} key and the switch's"
                f" security module is {keys.module.name}: keys must be held by the"
                " configured backend (docs/hsm.md)",
                config.source,
            )


def listener_context(config: SwitchConfig, listener: ListenerConfig) -> ListenerContext:
    group = config.terminal_group(listener.terminal_group)
    policy = TerminalPolicy(
        terminals=None if group.uses_registry else frozenset(group.terminals),
        mac_required=group.mac_required,
        max_in_flight=group.max_in_flight,
        mac_failures_before_lock=group.mac_failures_before_lock or 1 << 30,
        transmission_tolerance_s=group.transmission_time_tolerance_s,
        require_operator=group.require_operator,
        dukpt=group.dukpt,
    )
    return ListenerContext(
        name=listener.name,
        dialect=get_dialect(listener.dialect, listener.bitmap),
        policy=policy,
    )


def drain_deadline(config: SwitchConfig) -> float:
    """How long in-flight requests get to finish when the switch stops."""
    longest = max((a.request_timeout_s for a in config.acquirers), default=0.0)
    return min(longest + 2.0, 60.0) if math.isfinite(longest) else 60.0


def saf_data_key(lmk: Lmk) -> bytes:
    """The key that seals SAF payloads, derived from the LMK so nothing extra is stored."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"forecourt saf v1").derive(
        lmk.key
    )


async def run_switch(
    config: SwitchConfig,
    *,
    stop: trio.Event,
    lmk: Lmk | None = None,
    cluster: bool | None = None,
    reuse_port: bool = False,
    tls: TlsContexts | None = None,
    instance_lock_fd: int | None = None,
    module: SecurityModule | None = None,
    task_status: trio.TaskStatus[RunningSwitch] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Take the instance lock first (`InstanceInUse` if another process holds it), then run.

    Nothing is opened, read or written before the lock is held: a second process on a
    live data directory or node name never runs recovery on the first's journal.
    `instance_lock_fd`: the lock file a `serve --workers` supervisor already holds.
    `module`: a security module the caller built (a test's observed one); by
    default the configured backend's (switch/module_backend.py).
    """
    async with instance_held(config, instance_lock_fd) as instance, device_module(config) as device:
        await _run_switch(
            config,
            instance,
            device=device,
            module=module,
            stop=stop,
            lmk=lmk,
            cluster=cluster,
            reuse_port=reuse_port,
            tls=tls,
            task_status=task_status,
        )


async def _run_switch(
    config: SwitchConfig,
    instance: InstanceLock,
    *,
    device: PayShieldModule | None = None,
    module: SecurityModule | None = None,
    stop: trio.Event,
    lmk: Lmk | None = None,
    cluster: bool | None = None,
    reuse_port: bool = False,
    tls: TlsContexts | None = None,
    task_status: trio.TaskStatus[RunningSwitch] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the switch until `stop` is set, then drain and return.

    `cluster` (default: a shared PostgreSQL `database` is configured): other nodes
    share the journal and key store — ask the journal about retransmissions, take
    over what dead nodes left in flight, follow key rotations made elsewhere.
    `reuse_port`: listen with SO_REUSEPORT (`serve --workers`).
    `tls`: the SSL contexts, when the caller built them already; otherwise they are
    built here, first, so a bad CA, certificate or key path is a ConfigError before
    anything is opened.
    """
    if tls is None:
        tls = TlsContexts.build(config)
    if cluster is None:
        cluster = config.database is not None
    metrics = SwitchMetrics()
    policy = KeyPolicy(max_age=config.keys.max_age_s, grace=config.keys.grace_s)
    store = await trio.to_thread.run_sync(
        lambda: KeyStore.open(
            config.data_dir,
            dsn=config.database,
            lmk=lmk,
            lmk_file=config.keys.lmk_file,  # never inside data_dir unless a demo allows it
            allow_lmk_in_data_dir=config.keys.allow_lmk_in_data_dir,
            policy=policy,
            module=config.keys.module.backend,  # rows hold that backend's blocks
            payshield=config.keys.payshield,
        )
    )
    lmk = store.lmk
    if module is None:  # the process's one (switch/module_backend.py)
        module = switch_module(config, lmk, device)
    if device is not None:
        register_security_module(metrics.registry, device.status)
    try:
        keys = KeyringCache(
            store, config.keys.rotations_per_minute, config.keys.sign_on_window_s, module
        )
        await keys.load()
        await _load_zone_keys(config, keys)
        keys.dukpt = await dukpt_terminals_for(config, store, metrics.registry, module)
        async with open_journal(config, saf_key=saf_data_key(lmk), node=config.node) as journal:
            journal.on_batch = metrics.journal_batch
            authorisers = build_authorisers(
                config,
                AuthoriserDeps(
                    metrics=metrics,
                    zone_keys=keys.zone_mac,
                    tls=tls,
                    journal=journal,
                    key_store=store,
                    node=config.node,
                ),
            )
            ic_cards = build_ic_cards(config, journal, lmk, metrics)
            saf = SafSender(
                journal,
                authorisers,
                config.saf,
                metrics,
                config.node,
                hold_approved_s=config.reversal.hold_approved_s,
            )
            pipeline = Pipeline(
                router=config.build_router(),
                authorisers=authorisers,
                keys=keys,
                journal=journal,
                metrics=metrics,
                node=config.node,
                settings=PipelineSettings(
                    reverse_on_disconnect=config.reversal.on_disconnect,
                    preauth_window_s=config.reversal.preauth_completion_window_s,
                    duplicates_from_journal=cluster,
                    stand_in=StandInPolicy(config.stand_in) if config.stand_in.enabled else None,
                    params=ParamsCatalogue(config.params),
                    ic_cards=ic_cards,
                ),
                saf=saf,
                requests=TerminalRequests(
                    window=config.journal.duplicate_window,
                    # a copy's original was received after field 7 less the tolerance,
                    # and field 7 is at most the tolerance old: twice it back from now
                    let_go_s=2
                    * max(
                        (g.transmission_time_tolerance_s for g in config.terminal_groups),
                        default=600.0,
                    ),
                ),
            )
            report = await recover(journal, pipeline, config.node)
            await pipeline.roster.load()  # cashiers, pending registrations, device gauges
            log.info(
                "recovery_done",
                reversals_queued=report.reversed,
                never_left=report.never_left,
                duplicate_window=report.warmed,
            )
            listeners = [
                Listener(lc, listener_context(config, lc), pipeline, metrics, tls.listener(lc.name))
                for lc in config.listeners
            ]
            for lst in listeners:
                lst.reuse_port = reuse_port

            def health() -> dict[str, object]:
                return health_report(listeners, authorisers, journal, device)

            async with trio.open_nursery() as outer:
                for link in authorisers.values():
                    await outer.start(link.run)
                await outer.start(saf.run)
                if ic_cards is not None:  # grey records left open are flagged
                    await outer.start(ic_cards.run)
                # the business day: closes at the cut-over, host totals, late lines
                await outer.start(business_day_task(config, journal, authorisers, metrics).run)
                # other nodes' and workers' locks and sign-offs (a cheap indexed read)
                outer.start_soon(pipeline.guard.watch)
                outer.start_soon(pipeline.roster.watch)  # the same for cashiers, registrations
                outer.start_soon(pipeline.warnings.run)
                outer.start_soon(instance.watch)  # PostgreSQL: a lost lock is taken again
                await outer.start(
                    functools.partial(
                        keep_gc_quiet,
                        lambda: sum(lst.connection_count for lst in listeners),
                        observe=metrics.gc_pause,
                    )
                )
                if cluster:
                    await outer.start(
                        functools.partial(
                            run_takeover,
                            journal,
                            config.node,
                            every_s=min(config.saf.lease_s, 30.0),
                            threshold_s=takeover_threshold(config),
                            saf=saf,
                        )
                    )
                # every backend: a terminal added by `keys add-terminal` (another
                # process) or a rotation elsewhere is known within the watch period
                outer.start_soon(keys.watch)
                if device is not None:  # its health with no traffic, and its recovery
                    outer.start_soon(watch_module, device)
                metrics_port: int | None = None
                if config.metrics.enabled:
                    metrics_port = await outer.start(
                        serve_metrics,
                        config.metrics.host,
                        config.metrics.port,
                        metrics.registry,
                        health,
                    )
                with trio.CancelScope() as listening:
                    async with trio.open_nursery() as serving:
                        ports: dict[str, int] = {}
                        for lst in listeners:
                            ports[lst.config.name] = await serving.start(lst.run)
                        task_status.started(RunningSwitch(ports, metrics_port))
                        log.info("switch_started", node=config.node, ports=ports)
                        await stop.wait()
                        log.info("switch_draining", in_flight=pipeline.requests.in_flight_count)
                        for lst in listeners:
                            lst.drain()
                        listening.deadline = trio.current_time() + drain_deadline(config)
                if listening.cancelled_caught:
                    log.warning(
                        "drain_deadline_reached", in_flight=pipeline.requests.in_flight_count
                    )
                outer.cancel_scope.cancel()
        log.info("switch_stopped", node=config.node)
    finally:
        store.close()
