"""What the runtime's tests share: waiting on state that lives in another process."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT_SECONDS = 60.0
POLL_SECONDS = 0.01  # worker and proxy processes offer no event to await across the process boundary


def wait_until(condition: Callable[[], object]) -> bool:
    """Whether ``condition()`` became true within WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_SECONDS)
    return False
