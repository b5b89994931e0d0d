"""Configuration: every shipped file loads, and each mistake names its key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from forecourt.switch.config import (
    AUTHORISER_KINDS,
    ConfigError,
    Iso8583LinkConfig,
    SafConfig,
    load_config,
    parse_config,
)
from forecourt.switch.config_acquirers import _KIND_READERS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("conf/*.toml"), *ROOT.glob("conf/examples/*.toml")])

BASE: dict[str, Any] = {
    "data_dir": "/tmp/fc",
    "default_route": "bank",
    "listeners": [{"name": "l1", "port": 5000, "terminal_group": "g1"}],
    "terminal_groups": [{"name": "g1", "terminals": ["T1", "T2"]}],
    "acquirers": [{"name": "bank", "host": "h", "port": 6000}],
    "routes": [{"acquirer": "bank", "prefixes": ["4", "51-55"]}],
}


def cfg(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_shipped_files_exist() -> None:
    names = {p.name for p in SHIPPED}
    assert {"forecourt.toml", "ifsf.toml", "iso87bcd.toml", "legacy-87.toml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_loads(path: Path) -> None:
    config = load_config(path)
    assert config.listeners and config.acquirers
    config.build_router()


def test_legacy_example_is_iso87_ascii_without_mac() -> None:
    config = load_config(ROOT / "conf/examples/legacy-87.toml")
    (listener,) = config.listeners
    assert (listener.dialect, listener.bitmap, listener.framing) == ("iso87ascii", "binary", "2b")
    assert not config.terminal_group(listener.terminal_group).mac_required
    (host,) = config.acquirers
    assert host.dialect == "iso87ascii" and not host.mac
    assert config.build_router().route("4111111111111111") == host.name
    assert config.build_router().route("6011000000000004") == host.name


def test_bcd_example_has_tpdu() -> None:
    config = load_config(ROOT / "conf/examples/iso87bcd.toml")
    assert config.listeners[0].dialect == "iso87bcd" and config.listeners[0].tpdu


def test_defaults() -> None:
    c = parse_config(cfg())
    listener = c.listeners[0]
    assert (listener.host, listener.dialect, listener.bitmap, listener.framing) == (
        "0.0.0.0",
        "ifsf",
        "binary",
        "2b",
    )
    assert listener.max_frame == 8192 and listener.tpdu is False
    assert c.saf.max_attempts == 6
    assert c.metrics.port == 0 and not c.metrics.enabled
    assert c.logging.format == "auto"
    assert c.journal.synchronous == "full"
    assert c.database is None and c.journal_path == Path("/tmp/fc/journal.db")
    assert c.terminal_groups[0].terminals == ("T1", "T2")
    assert not c.terminal_groups[0].uses_registry


def test_an_acquirer_is_iso8583_unless_told() -> None:
    (acquirer,) = parse_config(cfg()).acquirers
    assert acquirer.kind == "iso8583"
    assert isinstance(acquirer.settings, Iso8583LinkConfig) and acquirer.iso8583.host == "h"
    # the link's keys are still read where callers have always read them
    assert (acquirer.host, acquirer.port, acquirer.dialect, acquirer.connections) == (
        "h",
        6000,
        "ifsf",
        1,
    )
    explicit = cfg(acquirers=[{"name": "bank", "kind": "iso8583", "host": "h", "port": 6000}])
    assert parse_config(explicit).acquirers == (acquirer,)


def test_every_authoriser_kind_has_a_reader() -> None:
    assert set(_KIND_READERS) == set(AUTHORISER_KINDS)


def test_empty_config_is_valid_for_tools() -> None:
    c = parse_config({})
    assert c.listeners == () and c.data_dir.name == "data"


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    (tmp_path / "sw.toml").write_text('data_dir = "state"\n')
    assert load_config(tmp_path / "sw.toml").data_dir == tmp_path / "state"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            cfg(listeners=[{"name": "l1", "port": 70000, "terminal_group": "g1"}]),
            "listeners[0].port: must be 0..65535",  # 0: an ephemeral port (tests, the demo)
        ),
        (
            cfg(acquirers=[{"name": "bank", "host": "h", "port": 0}]),
            "acquirers[0].port: must be 1..65535",
        ),
        (
            cfg(listeners=[{"name": "l1", "port": "5000", "terminal_group": "g1"}]),
            "listeners[0].port: must be an integer",
        ),
        (
            cfg(listeners=[{"name": "l1", "port": True, "terminal_group": "g1"}]),
            "listeners[0].port: must be an integer",
        ),
        (
            cfg(listeners=[{"name": "l1", "port": 5000, "terminal_group": "g1", "prot": 1}]),
            "listeners[0].prot: unknown key",
        ),
        (
            cfg(listeners=[{"name": "l1", "port": 5000, "terminal_group": "g1", "dialect": "x"}]),
            "listeners[0].dialect: must be one of ifsf, iso87ascii, iso87bcd",
        ),
        (
            cfg(listeners=[{"name": "l1", "port": 5000, "terminal_group": "nope"}]),
            "listeners[0].terminal_group: no terminal group named 'nope'",
        ),
        (cfg(listeners=[{"name": "l1", "port": 5000}]), "listeners[0].terminal_group: is required"),
        (
            cfg(listeners=[{"name": "l1", "port": 5000, "terminal_group": "g1", "framing": "2a"}]),
            "listeners[0].framing: must be one of 2b, 4a",
        ),
        (
            cfg(
                listeners=[
                    {"name": "l1", "port": 5000, "terminal_group": "g1", "tls": {"key": "k"}}
                ]
            ),
            "listeners[0].tls.certificate: is required",
        ),
        (
            cfg(
                listeners=[
                    {"name": "l1", "port": 5000, "terminal_group": "g1"},
                    {"name": "l1", "port": 5001, "terminal_group": "g1"},
                ]
            ),
            "listeners[1]: duplicate name 'l1'",
        ),
        (
            cfg(
                listeners=[
                    {"name": "a", "port": 5000, "terminal_group": "g1"},
                    {"name": "b", "port": 5000, "terminal_group": "g1"},
                ]
            ),
            "listeners[1]: duplicate address '0.0.0.0:5000'",
        ),
        (
            cfg(routes=[{"acquirer": "nobody", "prefixes": ["4"]}]),
            "routes[0].acquirer: no acquirer named 'nobody'",
        ),
        (cfg(routes=[{"acquirer": "bank", "prefixes": ["4x"]}]), "routes[0].prefixes[0]:"),
        (cfg(routes=[{"acquirer": "bank", "prefixes": ["51-5"]}]), "routes[0].prefixes[0]:"),
        (cfg(routes=[{"acquirer": "bank"}]), "routes[0].prefixes: a route needs"),
        (
            cfg(routes=[{"acquirer": "bank", "card_types": ["visa", "diner"]}]),
            "routes[0].card_types[1]: must be one of",
        ),
        (cfg(default_route="ghost"), "default_route: no acquirer named 'ghost'"),
        (
            cfg(acquirers=[{"name": "bank", "host": "h", "port": 6000, "acquirer_id": "12ab"}]),
            "acquirers[0].acquirer_id: must be 1-11 digits",
        ),
        (
            cfg(
                acquirers=[
                    {
                        "name": "bank",
                        "host": "h",
                        "port": 6000,
                        "reconnect_initial_s": 9.0,
                        "reconnect_max_s": 1.0,
                    }
                ]
            ),
            "acquirers[0].reconnect_max_s: must not be less than reconnect_initial_s",
        ),
        (cfg(acquirers=[{"name": "bank", "port": 6000}]), "acquirers[0].host: is required"),
        (
            # no host either: the unknown kind is what gets reported
            cfg(acquirers=[{"name": "bank", "kind": "telex"}]),
            "acquirers[0].kind: must be one of iso8583, wallet (got 'telex')",
        ),
        (
            cfg(acquirers=[{"name": "bank", "host": "h", "port": 6000, "kind": 8583}]),
            "acquirers[0].kind: must be a string",
        ),
        (
            cfg(acquirers=[{"name": "bank", "host": "h", "port": 6000, "hots": "h"}]),
            "acquirers[0].hots: unknown key",
        ),
        (
            cfg(terminal_groups=[{"name": "g1", "terminals": "all"}]),
            'terminal_groups[0].terminals: must be a list of terminal ids or "registry"',
        ),
        (
            cfg(terminal_groups=[{"name": "g1", "terminals": ["TOOLONG12"]}]),
            "terminal_groups[0].terminals[0]: a terminal id is 1-8",
        ),
        (
            cfg(terminal_groups=[{"name": "g1", "mac_algorithm": "des"}]),
            "terminal_groups[0].mac_algorithm: must be one of retail, cmac",
        ),
        (
            cfg(
                terminal_groups=[
                    {"name": "g1", "terminals": ["T1"]},
                    {"name": "g2", "terminals": ["T1"]},
                ]
            ),
            "terminal_groups[1].terminals: terminal 'T1' is already in group 'g1'",
        ),
        (
            # was validated as "HH:MM" and never read: now refused even when well formed
            cfg(terminal_groups=[{"name": "g1", "shift_cutover": "04:00"}]),
            "terminal_groups[0].shift_cutover: is no longer read: shifts close only by the "
            "terminal's 1520/0500",
        ),
        (cfg(saf={"max_attempts": 0}), "saf.max_attempts: must be 1..1000"),
        (cfg(saf={"in_flight_share": 1.5}), "saf.in_flight_share: must be between"),
        (cfg(saf={"backof_initial_s": 1}), "saf.backof_initial_s: unknown key"),
        (cfg(reversal={"on_disconnect": "yes"}), "reversal.on_disconnect: must be true or false"),
        (cfg(metrics={"port": 99999}), "metrics.port: must be 0..65535"),
        (cfg(logging={"format": "xml"}), "logging.format: must be one of auto, json, console"),
        (cfg(database="mysql://x"), "database: must be a postgresql:// DSN"),
        (cfg(listners=[]), "listners: unknown key"),
        (cfg(listeners={"name": "l1"}), "listeners: must be an array of tables"),
        (cfg(metrics=5), "metrics: must be a table"),
    ],
)
def test_errors_name_the_key_path(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="sw.toml")
    assert f"sw.toml: {message}" in str(info.value)


def test_overlapping_routes_to_different_acquirers_are_refused() -> None:
    data = cfg(
        acquirers=[
            {"name": "bank", "host": "h", "port": 1},
            {"name": "b2", "host": "h", "port": 2},
        ],
        routes=[
            {"acquirer": "bank", "prefixes": ["51-53"]},
            {"acquirer": "b2", "prefixes": ["53-55"]},
        ],
    )
    with pytest.raises(ConfigError, match=r"^routes: prefix ranges overlap"):
        parse_config(data)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_saf_backoff_doubles_up_to_the_maximum() -> None:
    saf = SafConfig(backoff_initial_s=5.0, backoff_max_s=30.0)
    assert [saf.backoff(n) for n in range(6)] == [0.0, 5.0, 10.0, 20.0, 30.0, 30.0]
