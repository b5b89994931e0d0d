"""TLS on the acquirer link: card data to the host only over a verified TLS session.

Real TLS on 127.0.0.1 against the acquirer simulator (or, for TLS 1.1, a bare
server), certificates made here (`tls_pki.Pki`). A host the switch cannot verify
never gets a message: the link stays down, the terminal gets 912, the refusal is
counted by reason and logged once per reconnect backoff.
"""

from __future__ import annotations

import functools
import io
import json
import ssl
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog
import trio
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.simulators.acquirer import AcquirerSimulator, simple_config
from forecourt.simulators.acquirer_tls import HostTls
from forecourt.switch.config import ConfigError, parse_config
from forecourt.switch.log import configure_logging
from forecourt.switch.tls import TlsContexts

from tests.switch.tls_pki import Authority, LinkRig, Pki, link_doc, link_rig, rig_keys

LINK_DOWN = "912"


def tls_host(
    issued_cert: Path, issued_key: Path, zak: bytes | None = None, **tls: object
) -> AcquirerSimulator:
    """The acquirer simulator serving TLS (and MACing under `zak` when given)."""
    config = simple_config(
        zak=prepare_mac(zak, MacAlgorithm.RETAIL) if zak is not None else None,
        tls=HostTls(issued_cert, issued_key, **tls),  # type: ignore[arg-type]
    )
    return AcquirerSimulator(config)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def until_link_up(rig: LinkRig, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while await rig.healthz() != 200:
            await trio.sleep(0.02)


async def purchase_code(rig: LinkRig) -> str:
    async with rig.terminal() as t:
        return (await t.exchange(t.purchase(1500))).fields["39"]


async def refused_for(rig: LinkRig, reason: str, host_saw: Callable[[], int]) -> None:
    """The link never came up: failures counted for `reason`, nothing reached the host."""
    with trio.fail_after(5):
        while await rig.handshake_failures(reason) < 2:
            await trio.sleep(0.02)
    assert await rig.healthz() == 503
    assert await purchase_code(rig) == LINK_DOWN
    assert host_saw() == 0


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    (tmp_path / "pki").mkdir()
    return Pki(tmp_path / "pki")


def server_cert(pki: Pki, ca: Authority, **names: object) -> tuple[Path, Path]:
    issued = pki.issue(ca, "acquirer", **names)  # type: ignore[arg-type]
    return issued.certificate, issued.key


async def test_a_purchase_over_a_tls_link_is_approved_and_the_host_saw_tls(
    tmp_path: Path, pki: Pki
) -> None:
    ca = pki.authority("bank")
    keys = rig_keys(tmp_path, mac=True)  # the link MACs: the default, nothing set
    host = tls_host(*server_cert(pki, ca, ips=["127.0.0.1"]), zak=keys.zak)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        async with link_rig(tmp_path, keys, port, tls={"ca_file": str(ca.certificate)}) as rig:
            assert rig.config.acquirers[0].mac  # on without `mac = true`
            await until_link_up(rig)
            assert await purchase_code(rig) == "000"
        nursery.cancel_scope.cancel()
    assert host.tls_sessions and host.tls_sessions[0].version in ("TLSv1.2", "TLSv1.3")
    purchase = next(r for r in host.received if r.mti == "1200")
    assert purchase.action_code == "000" and purchase.mac == "ok"  # the host verified the MAC


async def test_a_host_certificate_from_another_ca_is_refused_and_logged_once_per_backoff(
    tmp_path: Path, pki: Pki
) -> None:
    trusted, other = pki.authority("bank"), pki.authority("intruder")
    host = tls_host(*server_cert(pki, other, ips=["127.0.0.1"]))
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(host.run)
            tls = {"ca_file": str(trusted.certificate)}
            # a long maximum backoff: several attempts fit in its first window
            async with link_rig(
                tmp_path, rig_keys(tmp_path), port, tls=tls, reconnect_max_s=30.0
            ) as rig:
                await refused_for(rig, "certificate", lambda: len(host.received))
                attempts = await rig.handshake_failures("certificate")
            nursery.cancel_scope.cancel()
    finally:
        structlog.reset_defaults()
    assert host.tls_refused >= 2
    lines = [json.loads(x) for x in out.getvalue().splitlines() if "tls_handshake" in x]
    assert attempts >= 2
    assert len(lines) == 1, lines  # one line for the backoff window, not one per attempt
    assert lines[0]["reason"] == "certificate" and lines[0]["link"] == "bank"


async def test_a_host_certificate_for_another_name_is_refused(tmp_path: Path, pki: Pki) -> None:
    ca = pki.authority("bank")
    host = tls_host(*server_cert(pki, ca, dns=["other.example"]))  # not 127.0.0.1
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        tls = {"ca_file": str(ca.certificate)}
        async with link_rig(tmp_path, rig_keys(tmp_path), port, tls=tls) as rig:
            await refused_for(rig, "host_name", lambda: len(host.received))
        nursery.cancel_scope.cancel()


async def test_server_name_sets_the_name_the_certificate_must_carry(
    tmp_path: Path, pki: Pki
) -> None:
    ca = pki.authority("bank")
    host = tls_host(*server_cert(pki, ca, dns=["acq.bank.example"]))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        tls = {"ca_file": str(ca.certificate), "server_name": "acq.bank.example"}
        async with link_rig(tmp_path, rig_keys(tmp_path), port, tls=tls) as rig:
            await until_link_up(rig)
            assert await purchase_code(rig) == "000"
        nursery.cancel_scope.cancel()


def _tls11_only(cert: Path, key: Path) -> ssl.SSLContext:
    with warnings.catch_warnings():  # ssl warns that TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers 1.1 only at level 0
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


async def _bare_tls_server(
    context: ssl.SSLContext, outcomes: list[str], *, task_status: trio.TaskStatus[int]
) -> None:
    """Handshakes and hangs up: a host that speaks only what `context` allows."""

    async def handler(stream: trio.SocketStream) -> None:
        secured = trio.SSLStream(stream, context, server_side=True)
        try:
            await secured.do_handshake()
            outcomes.append(secured.version() or "?")
        except trio.BrokenResourceError as exc:
            reason = getattr(exc.__cause__, "reason", None)
            outcomes.append(f"refused: {reason}")
        finally:
            await trio.aclose_forcefully(secured)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handler, listeners)


async def test_a_tls_1_1_only_host_is_refused(tmp_path: Path, pki: Pki) -> None:
    ca = pki.authority("bank")
    cert, key = server_cert(pki, ca, ips=["127.0.0.1"])
    outcomes: list[str] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            functools.partial(_bare_tls_server, _tls11_only(cert, key), outcomes)
        )
        # the host really speaks TLS 1.1 to a client that still allows it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.create_default_context(cafile=str(ca.certificate))
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1_1
        probe = trio.SSLStream(
            await trio.open_tcp_stream("127.0.0.1", port), old, server_hostname="127.0.0.1"
        )
        await probe.do_handshake()
        assert probe.version() == "TLSv1.1"
        await trio.aclose_forcefully(probe)
        tls = {"ca_file": str(ca.certificate)}
        async with link_rig(tmp_path, rig_keys(tmp_path), port, tls=tls) as rig:
            # the host hangs up on a hello that offers nothing older than 1.2
            await refused_for(rig, "closed_by_host", lambda: 0)
        nursery.cancel_scope.cancel()
    assert outcomes[0] == "TLSv1.1"
    assert set(outcomes[1:]) == {"refused: UNSUPPORTED_PROTOCOL"}, outcomes


async def test_min_version_1_3_refuses_a_tls_1_2_host_that_the_default_accepts(
    tmp_path: Path, pki: Pki
) -> None:
    ca = pki.authority("bank")
    host = tls_host(*server_cert(pki, ca, ips=["127.0.0.1"]), max_version="1.2")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        tls = {"ca_file": str(ca.certificate), "min_version": "1.3"}
        async with link_rig(tmp_path / "a", rig_keys(_mk(tmp_path / "a")), port, tls=tls) as rig:
            # the host hangs up on a hello that offers only 1.3
            await refused_for(rig, "closed_by_host", lambda: len(host.received))
            assert host.tls_refused >= 2 and not host.tls_sessions
        tls = {"ca_file": str(ca.certificate)}  # the default floor, 1.2
        async with link_rig(tmp_path / "b", rig_keys(_mk(tmp_path / "b")), port, tls=tls) as rig:
            await until_link_up(rig)
            assert await purchase_code(rig) == "000"
        nursery.cancel_scope.cancel()
    assert host.tls_sessions[-1].version == "TLSv1.2"


def _mk(path: Path) -> Path:
    path.mkdir()
    return path


async def test_mutual_tls_the_link_presents_its_client_certificate(
    tmp_path: Path, pki: Pki
) -> None:
    ca, switches = pki.authority("bank"), pki.authority("switches")
    client = pki.issue(switches, "forecourt-switch", client=True)
    host = tls_host(*server_cert(pki, ca, ips=["127.0.0.1"]), client_ca=switches.certificate)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        tls = {
            "ca_file": str(ca.certificate),
            "certificate": str(client.certificate),
            "key": str(client.key),
        }
        async with link_rig(tmp_path, rig_keys(tmp_path), port, tls=tls) as rig:
            await until_link_up(rig)
            assert await purchase_code(rig) == "000"
        nursery.cancel_scope.cancel()
    assert host.tls_sessions[0].client_subject == "forecourt-switch"


async def test_mutual_tls_a_link_without_a_client_certificate_stays_down(
    tmp_path: Path, pki: Pki
) -> None:
    ca, switches = pki.authority("bank"), pki.authority("switches")
    host = tls_host(*server_cert(pki, ca, ips=["127.0.0.1"]), client_ca=switches.certificate)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.run)
        tls = {"ca_file": str(ca.certificate)}
        async with link_rig(tmp_path, rig_keys(tmp_path), port, tls=tls) as rig:
            await until(lambda: host.tls_refused >= 2)
            assert await rig.healthz() == 503
            assert await purchase_code(rig) == LINK_DOWN
        nursery.cancel_scope.cancel()
    assert not host.tls_sessions and not host.received


# -- an operator's mistakes: one ConfigError naming the key -------------------------------


def _link_config(tmp_path: Path, **tls: object) -> TlsContexts:
    doc = link_doc(tmp_path, 9, 0, mac=False, tls=tls)
    return TlsContexts.build(parse_config(doc, source="sw.toml"))


def test_a_missing_ca_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _link_config(tmp_path, ca_file=str(tmp_path / "absent.pem"))
    assert caught.value.path == "acquirers[0].tls.ca_file"
    assert str(caught.value).startswith("sw.toml: acquirers[0].tls.ca_file: cannot read")


def test_a_client_key_that_does_not_match_its_certificate_is_a_config_error(
    tmp_path: Path, pki: Pki
) -> None:
    ca = pki.authority("switches")
    one, two = pki.issue(ca, "one", client=True), pki.issue(ca, "two", client=True)
    with pytest.raises(ConfigError) as caught:
        _link_config(tmp_path, certificate=str(one.certificate), key=str(two.key))
    assert caught.value.path == "acquirers[0].tls.key"


@pytest.mark.parametrize(
    ("tls", "path"),
    [
        ({"certificate": "c.pem"}, "acquirers[0].tls.key"),
        ({"min_version": "1.1"}, "acquirers[0].tls.min_version"),
        ({"verify": False}, "acquirers[0].tls.verify"),  # no switch to turn checking off
        ({"server_name": ""}, "acquirers[0].tls.server_name"),
    ],
)
def test_link_tls_keys_are_checked_at_load(
    tmp_path: Path, tls: dict[str, object], path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(link_doc(tmp_path, 9, 0, mac=False, tls=tls), source="sw.toml")
    assert caught.value.path == path


def test_a_bad_ca_path_stops_serve_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from forecourt.switch.cli import main

    config = tmp_path / "sw.toml"
    config.write_text(
        '[[listeners]]\nname = "pos"\nport = 0\nterminal_group = "g"\n'
        '[[terminal_groups]]\nname = "g"\n'
        '[[acquirers]]\nname = "bank"\nhost = "127.0.0.1"\nport = 9\nmac = false\n'
        '[acquirers.tls]\nca_file = "tls/bank-ca.pem"\n'
        "[metrics]\nport = 0\n"
    )
    try:
        assert main(["serve", "--config", str(config)]) == 2
    finally:
        structlog.reset_defaults()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "acquirers[0].tls.ca_file: cannot read" in err[0] and "Traceback" not in err[0]


def test_the_simulator_reads_listen_tls_relative_to_its_file(tmp_path: Path) -> None:
    from forecourt.simulators._toml import SimConfigError
    from forecourt.simulators.acquirer import parse_acquirer_config

    doc = {"listen": {"tls": {"certificate": "a.pem", "key": "a.key", "max_version": "1.2"}}}
    config = parse_acquirer_config(doc, "sim.toml", tmp_path)
    assert config.tls == HostTls(tmp_path / "a.pem", tmp_path / "a.key", None, "1.2")
    with pytest.raises(SimConfigError) as caught:
        AcquirerSimulator(config)  # the files are not there: one error naming the key
    assert caught.value.path == "listen.tls.certificate"
    doc["listen"]["tls"]["max_version"] = "1.1"
    with pytest.raises(SimConfigError):
        parse_acquirer_config(doc, "sim.toml", tmp_path)
