"""Writing to a TCP socket without a scheduler round trip.

A trio ``send_all`` yields to the scheduler at least once even when the kernel takes
every byte at once, and a send lock adds another yield; on the switch's hot path
(two writes a transaction) those trips cost more than the write. When no other
write of the stream is under way, the bytes go straight to the non-blocking socket;
whatever the kernel does not take is left to ``send_all`` under the lock.
"""

from __future__ import annotations

import os

import trio


def socket_fd(stream: trio.abc.Stream) -> int:
    """The descriptor of a plain TCP stream (-1 for TLS and others)."""
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno()
    return -1


def write_now(fd: int, data: bytes) -> int:
    """Write what the socket takes without waiting (0 when its buffer is full).

    Only while no ``send_all`` of the same stream is under way (the caller holds
    no lock, so it checks that the lock is free); the stream stays open for as
    long as its session runs, so the descriptor cannot have been reused.
    """
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
