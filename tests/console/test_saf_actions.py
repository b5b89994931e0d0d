"""SAF retry and abandon: the journal operations (SQLite and PostgreSQL) and the
console's buttons, with their role checks, CSRF and audit lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from forecourt.switch.journal import Journal, JournalError, SafState, open_journal
from forecourt.switch.journal.writes import AbandonSaf, ClaimSaf, RetryFlaggedSaf

from tests.console.rig import audit_lines, console_config, console_rig, csrf_of

SAF_KEY = bytes(range(32))  # test only


async def _flagged(journal: Journal, txn_id: str = "01TESTTXN0000000000000000A") -> int:
    item = await journal.saf_enqueue(txn_id, "bank", "1420", b"reversal payload")
    await journal.saf_claim("n1", limit=1, lease_s=30.0)  # attempt 1 ...
    await journal.saf_flag(item, "max attempts reached")  # ... then given up
    return item


async def _entry(journal: Journal, item: int) -> tuple[str, int, float, str | None]:
    (entry,) = [e for e in await journal.saf_entries() if e.id == item]
    return entry.state, entry.attempts, entry.next_attempt_at, entry.last_error


async def _retry_and_abandon(journal: Journal) -> None:
    item = await _flagged(journal)
    now = time.time()
    await journal.write(RetryFlaggedSaf(item, "alice", now))
    state, attempts, due, error = await _entry(journal, item)
    # pending and due now, attempts kept: the resend goes as a repeat (1421)
    assert (state, attempts, due, error) == ("pending", 1, now, "retried by alice")
    with pytest.raises(JournalError, match="not flagged"):
        await journal.write(RetryFlaggedSaf(item, "alice", now))  # pending: not flagged

    await journal.write(AbandonSaf(item, "bob", now))
    state, _, _, error = await _entry(journal, item)
    assert (state, error) == ("done", "abandoned by bob")
    with pytest.raises(JournalError, match="not pending or flagged"):
        await journal.write(AbandonSaf(item, "bob", now))

    claimed = await _flagged(journal, "01TESTTXN0000000000000000B")
    await journal.write(RetryFlaggedSaf(claimed, "alice", now))
    (rows,) = await journal.write(ClaimSaf("n1", 10, 30.0, now + 1))
    assert [r[0] for r in rows] == [claimed]  # the SAF loop takes a retried item
    with pytest.raises(JournalError, match="not pending or flagged"):
        await journal.write(AbandonSaf(claimed, "bob", now))  # in flight: the loop owns it


async def test_retry_and_abandon_on_sqlite(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db", saf_key=SAF_KEY) as journal:
        await _retry_and_abandon(journal)


@pytest.mark.postgres
async def test_retry_and_abandon_on_postgres(postgres_db: str) -> None:
    async with open_journal(postgres_db, saf_key=SAF_KEY) as journal:
        await _retry_and_abandon(journal)


async def test_abandon_erases_the_payload(tmp_path: Path) -> None:
    async with open_journal(tmp_path / "journal.db", saf_key=SAF_KEY) as journal:
        item = await _flagged(journal)
        await journal.write(AbandonSaf(item, "bob", time.time()))
        reader = journal.backend.open_reader()
        try:
            from forecourt.switch.journal.reader import QueryReader

            assert isinstance(reader, QueryReader)
            (row,) = reader.view("SELECT payload FROM saf WHERE id = ?", (item,))
            assert bytes(row["payload"]) == b""
        finally:
            reader.close()


async def test_operator_retries_from_the_page_and_it_is_audited(tmp_path: Path) -> None:
    cfg = console_config(tmp_path)
    async with open_journal(cfg, saf_key=SAF_KEY) as journal:
        item = await _flagged(journal)
    async with console_rig(tmp_path, cfg) as rig:
        client = await rig.logged_in("alice", "operator")
        page = await client.get("/saf")
        assert f'action="/saf/{item}/retry"' in page.text
        answer = await client.post(f"/saf/{item}/retry", data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 303
        state, _, _, error = await _entry(rig.journal, item)
        assert (state, error) == (SafState.PENDING, "retried by alice")
        assert audit_lines(rig.journal, "saf_retry") == [("alice", "saf_retry", f"saf:{item}", "")]
        again = await client.post(f"/saf/{item}/retry", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 409  # not flagged any more
        assert len(audit_lines(rig.journal, "saf_retry")) == 1


async def test_abandon_needs_a_reason_without_a_card_number(tmp_path: Path) -> None:
    cfg = console_config(tmp_path)
    async with open_journal(cfg, saf_key=SAF_KEY) as journal:
        item = await _flagged(journal)
    async with console_rig(tmp_path, cfg) as rig:
        client = await rig.logged_in("alice", "operator")
        csrf = csrf_of((await client.get("/saf")).text)
        url = f"/saf/{item}/abandon"
        assert (await client.post(url, data={"csrf": csrf})).status_code == 400
        pan = {"csrf": csrf, "reason": "card 4761739001010010 disputed"}
        assert (await client.post(url, data=pan)).status_code == 400
        assert (await _entry(rig.journal, item))[0] == "flagged"
        reason = {"csrf": csrf, "reason": "host confirmed it never saw the original"}
        assert (await client.post(url, data=reason)).status_code == 303
        state, _, _, error = await _entry(rig.journal, item)
        assert (state, error) == ("done", "abandoned by alice")
        assert audit_lines(rig.journal, "saf_abandon") == [
            ("alice", "saf_abandon", f"saf:{item}", "host confirmed it never saw the original")
        ]


async def test_a_viewer_gets_no_button_and_a_forged_post_gets_403(tmp_path: Path) -> None:
    cfg = console_config(tmp_path)
    async with open_journal(cfg, saf_key=SAF_KEY) as journal:
        item = await _flagged(journal)
    async with console_rig(tmp_path, cfg) as rig:
        viewer = await rig.logged_in("vic", "viewer")
        page = await viewer.get("/saf")
        assert f'data-saf-id="{item}"' in page.text  # the viewer sees the item ...
        assert "/retry" not in page.text and "/abandon" not in page.text  # ... no buttons
        csrf = csrf_of(page.text)  # the viewer's own, valid token
        retry = await viewer.post(f"/saf/{item}/retry", data={"csrf": csrf})
        abandon = await viewer.post(f"/saf/{item}/abandon", data={"csrf": csrf, "reason": "x"})
        assert retry.status_code == abandon.status_code == 403
        assert (await _entry(rig.journal, item))[0] == "flagged"


async def test_saf_posts_without_the_csrf_token_are_refused(tmp_path: Path) -> None:
    cfg = console_config(tmp_path)
    async with open_journal(cfg, saf_key=SAF_KEY) as journal:
        item = await _flagged(journal)
    async with console_rig(tmp_path, cfg) as rig:
        client = await rig.logged_in("alice", "operator")
        assert (await client.post(f"/saf/{item}/retry")).status_code == 403
        wrong = await client.post(f"/saf/{item}/retry", data={"csrf": "guessed"})
        assert wrong.status_code == 403
        assert (await _entry(rig.journal, item))[0] == "flagged"
        assert audit_lines(rig.journal, "saf_retry") == []
