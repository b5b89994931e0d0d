"""The message value the switch passes around: MTI, fields, and the bytes it came from."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["Message"]


def _field_order(key: str) -> int:
    return int(key) if key.isdigit() else 0


@attrs.frozen(repr=False)
class Message:
    """One ISO 8583 message in pyiso8583's decoded form.

    `fields` maps "2".."128" to text; binary fields (52, 53, 55, 64, 96, 128 and
    the 1987 BCD numerics' nibbles) are upper-case hex. `raw` keeps the decoded
    bytes (no length header, no TPDU) so the MAC input is taken without
    re-encoding; it is not part of equality.
    """

    mti: str
    fields: Mapping[str, str]
    raw: bytes | None = attrs.field(default=None, eq=False)

    def __repr__(self) -> str:
        # Field numbers only: a repr ends up in logs and tracebacks, field data must not.
        present = ",".join(sorted(self.fields, key=_field_order))
        return f"Message(mti={self.mti!r}, fields=[{present}])"

    def get(self, n: int) -> str | None:
        """The value of data element `n`, or None when absent."""
        return self.fields.get(str(n))

    def with_fields(self, updates: Mapping[int, str | None], mti: str | None = None) -> Message:
        """A copy with fields set (None deletes) and optionally a new MTI; raw is dropped."""
        new = dict(self.fields)
        for n, value in updates.items():
            key = str(n)
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        return Message(mti=self.mti if mti is None else mti, fields=new)

    @property
    def stan(self) -> str | None:
        """Systems trace audit number (field 11)."""
        return self.fields.get("11")

    @property
    def terminal_id(self) -> str | None:
        """Card acceptor terminal identification (field 41)."""
        return self.fields.get("41")

    @property
    def pan(self) -> str | None:
        """Primary account number (field 2); mask it before it goes anywhere."""
        return self.fields.get("2")

    @property
    def amount(self) -> str | None:
        """Amount, transaction (field 4), in minor units as sent."""
        return self.fields.get("4")
