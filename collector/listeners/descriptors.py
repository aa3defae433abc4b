"""File descriptors: the open-files limit raised where allowed, and a share of it kept from the listeners.

Every accepted connection is a descriptor, and so is every WAL segment, store
part and upstream connection. Once the process runs out, accept() fails with
EMFILE and so does everything else. So the listeners of a process together
hold at most ``ConnectionCapacity.limit`` connections, a quarter of the
descriptors (at least ``MIN_DESCRIPTOR_RESERVE``) staying for the rest,
whatever each listener's own ``max_connections`` says.
"""

from __future__ import annotations

import logging
import resource

# A quarter of the open-files limit stays for the store, the queues and upstream connections.
DESCRIPTOR_RESERVE_FRACTION = 4
MIN_DESCRIPTOR_RESERVE = 256
# Even on a tiny limit, a listener can take a few connections.
MIN_LISTENER_CONNECTIONS = 8
NR_OPEN_PATH = "/proc/sys/fs/nr_open"

logger = logging.getLogger("genai_collector.listeners")


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit where allowed; the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        # Linux refuses a soft limit above fs.nr_open even when the hard limit is "unlimited".
        try:
            with open(NR_OPEN_PATH, encoding="ascii") as nr_open:
                target = int(nr_open.read())
        except (OSError, ValueError):
            return soft
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    CAPACITY.refresh()
    return target


def open_files_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 2**31 - 1


class ConnectionCapacity:
    """Connections every listener of this process may hold together.

    HTTP listeners count each connection as it opens and closes; a gRPC
    listener, whose connections grpc accepts itself, holds its whole
    ``max_connections`` while it runs. All on the event loop's thread.
    """

    def __init__(self) -> None:
        self.open = 0
        self._held = 0
        self._total = self._total_for(open_files_limit())

    @staticmethod
    def _total_for(descriptors: int) -> int:
        reserve = max(MIN_DESCRIPTOR_RESERVE, descriptors // DESCRIPTOR_RESERVE_FRACTION)
        return max(0, descriptors - reserve)

    def refresh(self) -> None:
        self._total = self._total_for(open_files_limit())

    @property
    def limit(self) -> int:
        """Connections HTTP listeners may hold together now."""
        return max(0, self._total - self._held)

    def try_open(self, held_by_listener: int) -> bool:
        """Count in one more connection of a listener holding ``held_by_listener``; False when none is left.

        Each listener may hold ``MIN_LISTENER_CONNECTIONS`` whatever the others hold.
        """
        if self.open >= self.limit and held_by_listener >= MIN_LISTENER_CONNECTIONS:
            return False
        self.open += 1
        return True

    def closed(self) -> None:
        self.open -= 1

    def hold(self, requested: int, listener: str) -> int:
        """Set aside up to ``requested`` connections for ``listener``; fewer (with a warning) when they do not fit."""
        granted = max(min(requested, self.limit - self.open), MIN_LISTENER_CONNECTIONS)
        if granted < requested:
            logger.warning(
                "%s: max_connections %d lowered to %d to keep descriptors for the store and the queues "
                "(open-files limit %d); raise it with ulimit -n or lower max_connections",
                listener,
                requested,
                granted,
                open_files_limit(),
            )
        self._held += granted
        return granted

    def unhold(self, granted: int) -> None:
        self._held -= granted


CAPACITY = ConnectionCapacity()
