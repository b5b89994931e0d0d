"""Logging: structlog, JSON lines in production, a readable console in a terminal.

Every event passes the PAN-masking processor before it is rendered, so a card
number that slips into a log call (in the event text, a nested value, an
exception message, bytes) is printed as first 6 + last 4. Level filtering is
done by the bound logger itself (``make_filtering_bound_logger``), so a debug
line in the hot path costs one method call when debug is off.

What the masker catches (docs: limits of masking):

- runs of 13-19 digits that pass the Luhn check, alone or grouped by single
  spaces or dashes ("4111 1111 1111 1111"), in any string, int, bytes (as text
  and as hex, so BCD-packed PANs are caught), exception text and repr() of
  other objects, at any depth of dicts, lists, tuples and sets;
- track data: digits next to "=" (track 2) or "^" (track 1): the digits
  before the separator are masked like a PAN and everything after it up to
  the next non-track character is replaced;
- digit runs longer than 19: they cannot be told apart from a raw ISO 8583
  message with a PAN inside, so they are masked whole (first 6 + last 4);
- values under a denied key (pan, track2, pin_block, cvv, any key name ...)
  are replaced by "[redacted]" whatever they hold.

What it cannot catch: a PAN split by other characters ("4111.1111..."), spelt
out, encrypted or encoded (base64), or with a bad check digit that is not
next to a track separator; binary messages in hex that are not BCD. The rule
stays: never log messages, fields 2/35/45/52/55 or keys; the masker is the net.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

# Lower-cased key names whose values are never logged.
DENIED_KEYS: frozenset[str] = frozenset(
    {
        "pan",
        "card_number",
        "cardnumber",
        "track",
        "track1",
        "track2",
        "track3",
        "track_1",
        "track_2",
        "track_3",
        "track_data",
        "pin",
        "pin_block",
        "pinblock",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "key",
        "keys",
        "kek",
        "tak",
        "tpk",
        "tek",
        "zak",
        "zpk",
        "zmk",
        "lmk",
        "clear_key",
        "key_block",
        "working_key",
        "data_key",
        "saf_key",
        "password",
        "secret",
        "icc_data",
        "field_2",
        "field_35",
        "field_45",
        "field_52",
        "field_55",
    }
)
_DENIED_SUFFIXES = ("_key", "_kek", "_pin", "_pan", "_secret", "_track2")
_ALLOWED_KEYS = frozenset({"matching_key", "terminal_key", "key_version", "idempotency_key"})

# Runs of digits joined by at most one space or dash, so "4111 1111-1111 1111" is one run.
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9])*(?![0-9])")
# Track 2 (PAN=YYMM...) and track 1 (B PAN ^ NAME ^ YYMM...).
_TRACK2 = re.compile(r"(?<![0-9])([0-9]{12,19})([=Dd])([0-9]*)")
_TRACK1 = re.compile(r"(?<![0-9])([0-9]{12,19})\^([^^\n]{0,26})\^([0-9]*)")
_AFTER_SEP = re.compile(r"([=^])([0-9]{12,19})(?![0-9])")


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check on a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_digits(digits: str) -> str:
    """First 6 + last 4, stars between (the PCI-allowed display)."""
    if len(digits) <= 10:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _mask_run(m: re.Match[str]) -> str:
    run = m.group(0)
    if len(run) < 13:
        return run
    if run.isdigit():
        if len(run) > 19 or luhn_ok(run):
            return mask_digits(run)
        return run
    # Grouped: try every window of whole groups holding 13-19 digits.
    groups = re.split(r"([ -])", run)
    parts = groups[0::2]
    seps = groups[1::2]
    masked = list(parts)
    hit = False
    for i, part in enumerate(parts):
        if len(part) > 19:
            masked[i] = mask_digits(part)
            hit = True
    for i in range(len(parts)):
        total = ""
        for j in range(i, len(parts)):
            total += parts[j]
            if len(total) > 19:
                break
            if len(total) >= 13 and luhn_ok(total):
                hit = True
                flat = mask_digits(total)
                pos = 0
                for k in range(i, j + 1):
                    masked[k] = flat[pos : pos + len(parts[k])]
                    pos += len(parts[k])
    if not hit:
        return run
    out = masked[0]
    for sep, part in zip(seps, masked[1:], strict=True):
        out += sep + part
    return out


def _track2(m: re.Match[str]) -> str:
    pan, sep, rest = m.group(1), m.group(2), m.group(3)
    if sep == "=" or rest:
        return f"{mask_digits(pan)}{sep}{REDACTED if rest else ''}"
    return m.group(0)


def mask_text(text: str) -> str:
    """Mask card numbers and track data in free text."""
    if len(text) < 12:
        return text
    text = _TRACK1.sub(lambda m: f"{mask_digits(m.group(1))}^{REDACTED}^{REDACTED}", text)
    text = _TRACK2.sub(_track2, text)
    text = _AFTER_SEP.sub(lambda m: m.group(1) + mask_digits(m.group(2)), text)
    return _DIGIT_RUN.sub(_mask_run, text)


def contains_pan(text: str) -> bool:
    """True when ``text`` holds something the masker would mask (a PAN or track data)."""
    return mask_text(text) != text


def _is_denied(key: object) -> bool:
    if not isinstance(key, str):
        return False
    k = key.lower()
    if k in _ALLOWED_KEYS:
        return False
    return k in DENIED_KEYS or k.endswith(_DENIED_SUFFIXES)


def _mask_bytes(value: bytes | bytearray | memoryview) -> str:
    raw = bytes(value)
    as_text = raw.decode("latin-1")
    printable = all(32 <= b < 127 for b in raw)
    hexed = raw.hex()
    hex_masked = mask_text(hexed)
    if printable:
        text_masked = mask_text(as_text)
        if hex_masked != hexed and text_masked == as_text:
            return REDACTED  # a packed PAN inside printable bytes: say nothing
        return repr(text_masked.encode("latin-1"))
    return "hex:" + hex_masked


_MAX_DEPTH = 8


def _mask_value(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int):
        s = str(value)
        if len(s) < 13:
            return value
        m = mask_text(s)
        return value if m == s else m
    if isinstance(value, bytes | bytearray | memoryview):
        return _mask_bytes(value)
    if depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_denied(k) else _mask_value(v, depth + 1)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [_mask_value(v, depth + 1) for v in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    # Anything else would be rendered with repr(): mask that text.
    try:
        text = repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return mask_text(text)


def mask_pans(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask card numbers and track data, redact denied keys."""
    for key, value in list(event_dict.items()):
        if _is_denied(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _mask_value(value)
    return event_dict


def _wants_json(fmt: str, stream: TextIO) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(
    level: str = "info",
    format: str = "auto",
    stream: TextIO | None = None,
    *,
    cache: bool = False,
) -> None:
    """Set up structlog for the whole process (call once at start-up).

    ``format``: "json" (one JSON object a line), "console" (readable, for people),
    "auto" (console when ``stream`` is a terminal, JSON otherwise).
    Exceptions are rendered to text *before* masking, never with local variables.
    ``cache``: each module's logger is assembled once (the switch process: binding
    a lazy logger per transaction cost ~4 % of its CPU); off where tests reconfigure.
    """
    out = stream if stream is not None else sys.stdout
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    processors: list[Callable[..., Any]] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_pans,
    ]
    if _wants_json(format, out):
        processors.append(structlog.processors.JSONRenderer(default=_json_default))
    else:
        colors = format != "json" and _isatty(out)
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            )
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _json_default(value: object) -> str:
    return mask_text(repr(value))


def get_logger(**initial: Any) -> Any:
    """A bound logger with initial context (terminal id, STAN, txn id ...)."""
    return structlog.get_logger(**initial)
