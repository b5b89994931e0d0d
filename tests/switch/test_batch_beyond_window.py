"""A batch re-uploaded after the duplicate window let its advices go, and after the
transmission-time tolerance: each advice still journalled and forwarded once.

The pipeline's duplicate check takes a row received before (field 7 - tolerance) for
an older use of the key (STANs come round); a re-uploaded advice carries a new field
7, so without the batch it would be a new advice, forwarded a second time. A window
of 2 and a tolerance of 1 s bring that about in a test's time.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import trio
from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message

from tests.switch.harness import started_switch
from tests.switch.test_batch_upload import advices_at_host, offline_advice, totals, trailer, upload


def _count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _sent_now(message: Message) -> Message:
    return message.with_fields({7: time.strftime("%m%d%H%M%S", time.gmtime())})


async def test_a_late_reupload_beyond_the_window_forwards_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with (
        started_switch(tmp_path, duplicate_window=2, tolerance_s=1.0) as sut,
        sut.terminal() as t,
    ):
        batch = "0000000777"
        advices = [offline_advice(t, batch, a) for a in (1500, 2500)]
        await upload(t, advices)
        for _ in range(4):  # the window (2 entries) lets the advices go
            assert (await t.exchange(t.purchase(100))).fields["39"] == "000"
        await trio.sleep(2.2)  # and the tolerance has passed since they were received
        await upload(t, [_sent_now(a) for a in advices])
        closing = await t.exchange(trailer(t, batch, 2, 4000))
        assert (closing.fields["39"], totals(closing)) == ("500", (batch, "000002000000004000"))
        # the same advice under another batch number: still the first batch's, not sent again
        moved = _sent_now(advices[0]).with_fields({48: encode_field48({4: "0000000778"})})
        assert (await t.exchange(moved)).fields["39"] == "000"
        other = await t.exchange(trailer(t, "0000000778", 1, 1500))
        assert (other.fields["39"], totals(other)) == ("501", ("0000000778", "0" * 18))
        at_host = await advices_at_host(sut, 2)
        assert sorted(m.fields["4"] for m in at_host) == ["000000001500", "000000002500"]
    assert _count(db, "SELECT count(*) FROM saf WHERE mti LIKE '122%'") == 2
    assert _count(db, "SELECT count(*) FROM transactions WHERE request_mti = '1220'") == 2
