"""Data on disk for its owner only: directories 0700, files 0600, whatever the umask.

Spans hold prompts and replies, the keys file holds what admits callers: nothing
the collector keeps may be readable by another local user. Its own files are
created with these modes explicitly. The chDB engine creates its files itself,
so the commands restrict the process umask (``restrict_umask``) before anything
is opened. A directory the collector opens that an older version left open to
group or others is tightened then; parent directories that already existed are
the operator's and are left as they are.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Masks every group and other permission bit from what the process creates from now on.
OWNER_ONLY_UMASK = 0o077


def restrict_umask() -> int:
    """Add OWNER_ONLY_UMASK to the process umask (bits already masked stay masked); returns the previous umask."""
    previous = os.umask(OWNER_ONLY_UMASK)
    os.umask(previous | OWNER_ONLY_UMASK)
    return previous


def private_directory(path: Path) -> Path:
    """``path`` as a directory only its owner can use: created 0700 (missing parents too), or tightened to 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            pass  # made meanwhile by another process; tightened below if it is ours to tighten
    tighten(path, PRIVATE_DIRECTORY_MODE)
    return path


def tighten(path: Path, mode: int) -> None:
    """Take every group and other permission off ``path`` (setting ``mode``), if it has any."""
    if stat.S_IMODE(path.stat().st_mode) & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        pass  # owned by another user: not ours to change
