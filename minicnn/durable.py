"""Writing a run's files so that a crash, a kill or a full disk never leaves a half file.

A database's promise, kept the usual way::

    write to  NAME.xxxx.tmp  in the same folder      (a reader never sees it)
    flush, fsync it                                   (its bytes are on the disk)
    rename it over NAME                               (atomic: the old file or the new)
    fsync the folder                                  (the rename itself is on the disk)

A failure before the rename leaves the old file as it was and removes the temporary
one. A disk that fills up is :class:`DiskFullError`, which names the file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class DiskFullError(OSError):
    """No space left on the device while writing a run's file; the file's last good
    version (if it had one) is kept."""


def write_atomically(path, write) -> None:
    """``write(file)`` into a temporary file beside ``path``, fsynced, then renamed over
    ``path`` and the folder fsynced: ``path`` holds the old contents or the new, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _disk_full_names(path):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it private; a run's file is an ordinary one
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        sync_folder(path.parent)


def write_text_atomically(path, text: str) -> None:
    write_atomically(path, lambda file: file.write(text.encode()))


def append_line(path, line: str) -> None:
    """Append one line to a log (``metrics.jsonl``) and fsync it. A crash may cut the
    last line short; the reader skips a line that does not parse, and a resumed run
    rewrites the log from its checkpoint."""
    path = Path(path)
    with _disk_full_names(path), open(path, "a") as file:
        file.write(line.rstrip("\n") + "\n")
        file.flush()
        os.fsync(file.fileno())


def sync_folder(folder) -> None:
    """fsync a folder, so that the names created or renamed in it are on the disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _disk_full_names:
    """Turn ENOSPC (and EDQUOT, a full quota) into a :class:`DiskFullError` naming ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, OSError) and not isinstance(error, DiskFullError) and error.errno in (
            errno.ENOSPC, errno.EDQUOT,
        ):  # fmt: skip
            full = DiskFullError(
                f"{self.path}: the disk is full (no space left on the device); "
                f"its last complete version, if it had one, is kept"
            )
            full.errno = error.errno
            raise full from error
        return False
