"""How much memory the collector uses and how much it may use, read cheaply from the kernel.

Resident set size comes from ``/proc/<pid>/statm`` (one small read, no parsing
of ``status``): this process's, plus that of the worker processes it runs
(collector.runtime.members names them), since they are the collector as much as it
is. The total a percentage limit is taken of is the machine's memory, or the
container's cgroup limit when that is lower, as the Go collector does.
"""

from __future__ import annotations

import os
from pathlib import Path

from collector.runtime import members

STATM = Path("/proc/self/statm")
STATM_OF = "/proc/{pid}/statm"
# cgroup v2, then v1; v1 writes a huge number for "no limit", v2 writes "max".
CGROUP_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class MemoryUnreadable(OSError):
    """This platform does not expose the process's memory the way the limiter reads it."""


def resident_bytes() -> int:
    """The resident set size of this process and its worker processes, in bytes."""
    try:
        fields = STATM.read_bytes().split()
    except OSError as exc:
        raise MemoryUnreadable(f"cannot read {STATM}: {exc.strerror or exc}") from None
    # statm: size resident shared text lib data dt, in pages.
    pages = int(fields[1])
    for pid in members.pids():
        try:
            pages += int(Path(STATM_OF.format(pid=pid)).read_bytes().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile; the pool forgets it
    return pages * PAGE_SIZE


def total_bytes() -> int:
    """The memory this process may use at most: physical memory, or a lower cgroup limit."""
    total = int(os.sysconf("SC_PHYS_PAGES")) * PAGE_SIZE
    for path in CGROUP_LIMIT_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total
