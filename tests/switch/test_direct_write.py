"""FrameWriter over a real TCP connection on 127.0.0.1: whole frames, in order per
sender, never interleaved, also when the kernel's buffer fills and writes fall
back to send_all."""

from __future__ import annotations

import struct

import pytest
import trio
from forecourt.switch.direct_write import FrameWriter
from hypothesis import given, settings
from hypothesis import strategies as st


async def _pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


def _frame(sender: int, seq: int, size: int) -> bytes:
    body = struct.pack(">HI", sender, seq) + bytes([(sender * 31 + seq) % 251]) * size
    return struct.pack(">I", len(body)) + body


async def _read_frames(
    stream: trio.SocketStream, count: int, slow: bool, limit: int
) -> list[bytes]:
    buf = bytearray()
    frames: list[bytes] = []
    while len(frames) < count:
        data = await stream.receive_some(4096 if slow else 65536)
        assert data, "connection closed early"
        buf += data
        while len(buf) >= 4:
            (n,) = struct.unpack(">I", buf[:4])
            assert n <= limit, f"garbage length {n}: frames interleaved"
            if len(buf) < 4 + n:
                break
            frames.append(bytes(buf[4 : 4 + n]))
            del buf[: 4 + n]
        if slow:
            await trio.sleep(0)
    return frames


async def _run(senders: int, per_sender: int, size: int, slow: bool) -> None:
    client, server = await _pair()
    writer = FrameWriter(client)
    async with client, server:
        got: list[bytes] = []

        async def send_all_of(sender: int) -> None:
            for seq in range(per_sender):
                await writer.send(_frame(sender, seq, size))

        async def receive() -> None:
            got.extend(await _read_frames(server, senders * per_sender, slow, size + 6))

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive)
                for s in range(senders):
                    nursery.start_soon(send_all_of, s)
    assert len(got) == senders * per_sender
    last = dict.fromkeys(range(senders), -1)
    for body in got:
        sender, seq = struct.unpack(">HI", body[:6])
        assert body[6:] == bytes([(sender * 31 + seq) % 251]) * size  # not interleaved
        assert seq == last[sender] + 1  # in order per sender
        last[sender] = seq


@pytest.mark.trio
async def test_big_frames_fill_the_buffer_and_stay_whole() -> None:
    # 4 senders x 8 frames of 1 MB against a slow reader: the kernel buffer fills,
    # most writes are partial and finish under the lock
    await _run(senders=4, per_sender=8, size=1 << 20, slow=True)


@settings(max_examples=25, deadline=None)
@given(
    senders=st.integers(1, 6),
    per_sender=st.integers(1, 20),
    size=st.integers(0, 300_000),
    slow=st.booleans(),
)
def test_frames_never_interleave(senders: int, per_sender: int, size: int, slow: bool) -> None:
    trio.run(_run, senders, per_sender, size, slow)


@pytest.mark.trio
async def test_closed_writer_refuses() -> None:
    client, server = await _pair()
    async with client, server:
        writer = FrameWriter(client)
        writer.close()
        with pytest.raises(trio.ClosedResourceError):
            await writer.send(b"x")


@pytest.mark.trio
async def test_a_frame_cut_short_closes_the_writer() -> None:
    # nobody reads: the kernel takes part of the frame, send_all then waits and is
    # cancelled; no later frame may follow the half-written one
    client, server = await _pair()
    async with client, server:
        writer = FrameWriter(client)
        with trio.move_on_after(0.2) as waited:
            await writer.send(_frame(0, 0, 32 << 20))
        assert waited.cancelled_caught
        with pytest.raises(trio.ClosedResourceError):
            await writer.send(_frame(0, 1, 10))
