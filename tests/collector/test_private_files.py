"""Owner-only data: directories made 0700 and old ones tightened, whatever the umask; the umask the commands set."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from collector.private_files import (
    OWNER_ONLY_UMASK,
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    private_directory,
    restrict_umask,
    tighten,
)
from tests.conftest import process_umask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_directory_and_its_missing_parents_are_0700_under_a_permissive_umask(tmp_path: Path) -> None:
    with process_umask(0o022):
        made = private_directory(tmp_path / "data" / "queue" / "clickhouse")
    assert made.is_dir()
    assert [_mode(p) for p in (made, made.parent, made.parent.parent)] == [PRIVATE_DIRECTORY_MODE] * 3


def test_a_directory_an_older_version_left_open_is_tightened_and_its_parents_left_alone(tmp_path: Path) -> None:
    parent = tmp_path / "shared"
    old = parent / "clickhouse"
    old.mkdir(parents=True)
    os.chmod(parent, 0o755)
    os.chmod(old, 0o755)

    private_directory(old)

    assert _mode(old) == PRIVATE_DIRECTORY_MODE
    assert _mode(parent) == 0o755  # the operator's directory, not the collector's


def test_tighten_removes_group_and_other_bits_only_when_present(tmp_path: Path) -> None:
    segment = tmp_path / "00000000000000000001.wal"
    segment.write_bytes(b"x")
    os.chmod(segment, 0o644)
    tighten(segment, PRIVATE_FILE_MODE)
    assert _mode(segment) == PRIVATE_FILE_MODE

    os.chmod(segment, 0o400)  # already private: left as the owner set it
    tighten(segment, PRIVATE_FILE_MODE)
    assert _mode(segment) == 0o400


def test_restrict_umask_masks_group_and_others_and_keeps_what_was_masked(tmp_path: Path) -> None:
    with process_umask(0o022):
        assert restrict_umask() == 0o022
        assert os.umask(0o022) == OWNER_ONLY_UMASK
    with process_umask(0o277):
        restrict_umask()
        assert os.umask(0o277) == 0o277
    with process_umask(0o022):
        restrict_umask()
        (tmp_path / "file").write_bytes(b"x")
        (tmp_path / "directory").mkdir()
    assert _mode(tmp_path / "file") == 0o600
    assert _mode(tmp_path / "directory") == 0o700
