"""Private files and directories: whatever holds secrets or hashes is for its owner's eyes only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Group and other permission bits: what "private" takes away.
_SHARED_BITS = 0o077


def tighten(path: Path) -> bool:
    """Drop the group/other permission bits of an existing file or directory (False: missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if mode & _SHARED_BITS:
        os.chmod(path, mode & ~_SHARED_BITS)
    return True


def private_dir(path: Path) -> Path:
    """Make `path` a 0700 directory: missing ones (parents too) created so, else tightened."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            # Created concurrently (another process starting): tightened below like any other.
            pass
        else:
            # mkdir's mode passes through the umask; chmod makes the new directory exactly 0700.
            os.chmod(directory, PRIVATE_DIR_MODE)
    tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Ensure `path` is a private file: created empty with mode 0600, or an existing one tightened.

    An existing file is never truncated, so this is safe on a database before it is opened.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)
    return path


def write_private_file(path: Path, data: bytes) -> Path:
    """Write `data` to a new 0600 file, durably; refuses (FileExistsError) to replace one."""
    # O_EXCL: a secret is never overwritten, and the file is never visible with a wider mode.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path
