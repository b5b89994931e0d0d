"""Logging: the PAN masker under attack, JSON/console output, cheap level filtering."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from forecourt.switch.log import (
    REDACTED,
    configure_logging,
    contains_pan,
    luhn_ok,
    mask_pans,
    mask_text,
)

PAN = "4111111111111111"
PAN19 = "6759649826438453003"  # Luhn-valid 19 digits
AMEX = "378282246310005"
MASKED = "411111******1111"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def masked(**event: Any) -> dict[str, Any]:
    return dict(mask_pans(None, "info", dict(event)))


def test_luhn() -> None:
    assert luhn_ok(PAN) and luhn_ok(PAN19) and luhn_ok(AMEX)
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"card {PAN} declined", f"card {MASKED} declined"),
        (f"pan:{PAN},", f"pan:{MASKED},"),
        (AMEX, "378282*****0005"),
        (PAN19, "675964*********3003"),
        ("4111 1111 1111 1111", "4111 11** **** 1111"),
        ("4111-1111-1111-1111", "4111-11**-****-1111"),
        (f";{PAN}=25121010000012300000?", f";{MASKED}=[redacted]?"),
        (f"%B{PAN}^DOE/JOHN^2512101000000000?", f"%B{MASKED}^[redacted]^[redacted]"),
        (f"{PAN}D2512101", f"{MASKED}D[redacted]"),
        ("pan=411111111111", "pan=411111**1111"),  # any 12-19 digits after '='
        ("raw 0200" + "16" + PAN + "000000000000001000", None),  # inside a long digit run
    ],
)
def test_mask_text(text: str, expected: str | None) -> None:
    out = mask_text(text)
    assert PAN not in out and AMEX not in out and PAN19 not in out
    assert "1111111111" not in out
    if expected is not None:
        assert out.startswith(expected) or out == expected


@pytest.mark.parametrize(
    "text",
    [
        "stan 000123 amount 000000001000 at 2026-05-09T07:35:25Z",
        "terminal T0000001 rrn 512312345678",
        "4111111111111112",  # fails Luhn, no track separator
        "txn 01HX3K9Q7Z2M4N5P6R7S8T9V0W",
        "elapsed 0.000123 s",
    ],
)
def test_ordinary_values_survive(text: str) -> None:
    assert mask_text(text) == text
    assert not contains_pan(text)


def test_nested_values_and_denied_keys() -> None:
    out = masked(
        event=f"declined {PAN}",
        pan="anything",
        track2="x",
        PIN_BLOCK="0412AC",
        tak="ABCDEF",
        working_key="00112233",
        matching_key=("2", "T1", "000001"),
        detail={"nested": [{"deeper": f"x {PAN} y"}, (PAN,)], "cvv": "123", "ok": 5},
        card_number=PAN,
        big=int(PAN),
        small=123456,
        ratio=0.5,
        nothing=None,
        items={PAN},
    )
    assert out["event"] == f"declined {MASKED}"
    for key in ("pan", "track2", "PIN_BLOCK", "tak", "working_key", "card_number"):
        assert out[key] == REDACTED
    assert out["matching_key"] == ("2", "T1", "000001")
    assert out["detail"]["nested"][0]["deeper"] == f"x {MASKED} y"
    assert out["detail"]["nested"][1] == (MASKED,)
    assert out["detail"]["cvv"] == REDACTED and out["detail"]["ok"] == 5
    assert out["big"] == MASKED and out["small"] == 123456
    assert out["ratio"] == 0.5 and out["nothing"] is None
    assert out["items"] == [MASKED]


def test_bytes_ascii_and_bcd() -> None:
    out = masked(ascii=PAN.encode(), bcd=bytes.fromhex(PAN + "D25121"), plain=b"\x00\x01ok")
    assert PAN not in json.dumps(out)
    assert out["ascii"] == repr(MASKED.encode())
    assert out["bcd"].startswith("hex:411111")
    assert out["plain"] == "hex:00016f6b"


def test_objects_are_masked_through_repr() -> None:
    class Message:
        def __repr__(self) -> str:
            return f"Message(fields={{'2': '{PAN}'}})"

    out = masked(msg=Message())
    assert PAN not in out["msg"] and MASKED in out["msg"]


def test_deep_nesting_is_cut() -> None:
    value: Any = PAN
    for _ in range(20):
        value = [value]
    assert PAN not in repr(masked(v=value))


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_masking_and_exceptions() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)  # StringIO is not a terminal → JSON
    log = structlog.get_logger("t").bind(terminal_id="T0000001", stan="000042")
    log.info("authorised", detail={"pan": PAN}, note=f"card {PAN}")
    try:
        raise ValueError(f"bad card {PAN}")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert PAN not in text
    first, second = _lines(stream)
    assert first["event"] == "authorised" and first["level"] == "info"
    assert first["terminal_id"] == "T0000001" and first["stan"] == "000042"
    assert first["detail"] == {"pan": REDACTED} and first["note"] == f"card {MASKED}"
    assert "timestamp" in first
    assert MASKED in second["exception"] and "ValueError" in second["exception"]


def test_console_format_masks_too() -> None:
    stream = io.StringIO()
    configure_logging("debug", "console", stream)
    log = structlog.get_logger("t")
    log.debug("seen", card=f"x{PAN}x")
    try:
        raise RuntimeError(PAN)
    except RuntimeError:
        log.error("boom", exc_info=True)
    text = stream.getvalue()
    assert PAN not in text and MASKED in text and "seen" in text
    assert "\x1b[" not in text  # no colours when not a terminal
    assert not text.lstrip().startswith("{")


def test_level_filtering_happens_before_formatting() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    calls = 0

    class Expensive:
        def __repr__(self) -> str:
            nonlocal calls
            calls += 1
            return "expensive"

    log = structlog.get_logger("t")
    log.debug("hidden", value=Expensive())
    log.info("hidden too", value=Expensive())
    assert calls == 0 and stream.getvalue() == ""
    log.warning("shown", value=Expensive())
    assert calls == 1
    assert _lines(stream)[0]["value"] == "expensive"


def test_bad_level() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("verbose", "json", io.StringIO())
