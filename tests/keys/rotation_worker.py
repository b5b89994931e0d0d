"""A separate process that rotates one owner's keys in a loop (concurrency tests).

Usage: python -m tests.keys.rotation_worker (DATA_DIR | DSN) LMK_HEX OWNER COUNT START_FILE
Prints one JSON line: rotations done, stale deliveries, violations seen.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from forecourt.keys import KeyState, KeyStore, KeyType, Lmk, StaleKeyChange


def main(argv: list[str]) -> int:
    where, lmk_hex, owner, count_s, start_file = argv
    lmk = Lmk.from_hex(lmk_hex)
    if where.startswith("postgresql://"):
        store = KeyStore.open(dsn=where, lmk=lmk)
    else:
        store = KeyStore.open(Path(where), lmk=lmk)
    deadline = time.time() + 30
    while not os.path.exists(start_file) and time.time() < deadline:
        time.sleep(0.005)
    done = stale = violations = 0
    with store:
        for i in range(int(count_s)):
            if i % 2:
                store.rotate(owner, activate=True, actor=f"pid{os.getpid()}")
                done += 1
            else:
                change = store.rotate(owner, actor=f"pid{os.getpid()}")
                try:
                    store.mark_delivered(change)
                    done += 1
                except StaleKeyChange:
                    stale += 1
            active = [
                k
                for k in store.list_keys(owner)
                if k.key_type is KeyType.TAK and k.state is KeyState.ACTIVE
            ]
            if len(active) != 1:
                violations += 1
    print(json.dumps({"done": done, "stale": stale, "violations": violations}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
