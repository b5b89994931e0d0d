"""Every failure an operator can cause is one line naming the thing and the fix, with a
non-zero exit and no traceback; `forecourt --debug` shows the traceback.

Real subprocesses of `forecourt`, the shipped configuration (with its data
directory and ports moved into the test's folder), real sockets held to make a
port busy, and a PostgreSQL address where nothing listens.
"""

from __future__ import annotations

import socket
from pathlib import Path

from forecourt.switch.config import load_config

from tests.operators.cli_runs import forecourt, free_port, one_line_failure, shipped_config


def _with_keys(tmp_path: Path, *, acquirer: bool = True) -> Path:
    config = shipped_config(tmp_path)
    lmk = tmp_path / "etc" / "lmk.key"
    lmk.parent.mkdir()
    assert forecourt("keys", "init", "--config", config, "--lmk-file", lmk).returncode == 0
    if acquirer:
        sim = Path(__file__).resolve().parents[2] / "conf" / "sim" / "test-zmk"
        added = forecourt(
            "keys", "add-acquirer", "bank", "--config", config,
            "--component-file", sim / "component-1.txt",
            "--component-file", sim / "component-2.txt",
            "--component-kcv", "08D7B4", "--component-kcv", "D9C2A9", "--kcv", "6BC0F2",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    return config


def test_no_key_store_and_no_lmk(tmp_path: Path) -> None:
    line = one_line_failure(forecourt("serve", "--config", shipped_config(tmp_path)))
    assert str(tmp_path / "data") in line and "forecourt keys init --config" in line


def test_traceback_only_with_debug(tmp_path: Path) -> None:
    result = forecourt("--debug", "serve", "--config", shipped_config(tmp_path))
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "LmkMissing" in result.stderr


def test_unknown_acquirer_at_serve(tmp_path: Path) -> None:
    config = _with_keys(tmp_path, acquirer=False)
    line = one_line_failure(forecourt("serve", "--config", config))
    assert "acquirers[0].mac" in line and "forecourt keys add-acquirer bank" in line


def test_unknown_owner_in_keys_commands(tmp_path: Path) -> None:
    config = _with_keys(tmp_path)
    for args in (("rotate", "T9999999"), ("export-test-keys", "T9999999", "--to", "k.toml")):
        line = one_line_failure(forecourt("keys", *args, "--config", config, cwd=tmp_path))
        assert "'T9999999'" in line
    assert not (tmp_path / "k.toml").exists()


def test_bad_config(tmp_path: Path) -> None:
    config = shipped_config(tmp_path, data_dir="data_dir = 3")
    line = one_line_failure(forecourt("serve", "--config", config))
    assert line == f"forecourt serve: {config}: data_dir: must be a string"
    line = one_line_failure(forecourt("keys", "list", "--config", config))
    assert "data_dir: must be a string" in line
    missing = tmp_path / "nowhere.toml"
    for command in (("serve",), ("keys", "list")):
        line = one_line_failure(forecourt(*command, "--config", missing))
        assert str(missing) in line and "No such file" in line
    typo = shipped_config(tmp_path, max_batch="max_bacth = 10")
    assert "journal.max_bacth: unknown key" in one_line_failure(
        forecourt("serve", "--config", typo)
    )


def _held(port: int) -> socket.socket:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", port))
    holder.listen()
    return holder


def test_listener_port_in_use(tmp_path: Path) -> None:
    config = _with_keys(tmp_path)
    port = load_config(config).listeners[0].port
    with _held(port):
        line = one_line_failure(forecourt("serve", "--config", config))
    assert f"listeners 'forecourt-ifsf': cannot listen on 0.0.0.0:{port}" in line
    assert "Address already in use" in line


def test_metrics_port_in_use(tmp_path: Path) -> None:
    config = _with_keys(tmp_path)
    port = load_config(config).metrics.port
    with _held(port):
        line = one_line_failure(forecourt("serve", "--config", config))
    assert f"metrics: cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert "[metrics] port" in line


def test_database_that_cannot_be_reached(tmp_path: Path) -> None:
    port = free_port()
    dsn = f'database = "postgresql://forecourt:secret@127.0.0.1:{port}/forecourt"'
    config = shipped_config(tmp_path, database=dsn)
    line = one_line_failure(forecourt("serve", "--config", config))
    assert f"forecourt@127.0.0.1:{port}/forecourt" in line and "Connection refused" in line
    assert "secret" not in line
    line = one_line_failure(forecourt("keys", "list", "--config", config))
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line and "secret" not in line
