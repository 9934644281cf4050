"""The one way this tool writes a file: atomically, through a temporary file beside it."""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional


def write_atomically(path: str, data: bytes, *, prefix: str = ".tmp-", suffix: str = "",
                     durable: bool = False,
                     prepare: Optional[Callable[[str], bool]] = None) -> bool:
    """Write ``data`` to ``path`` through a temporary file in the same directory and
    ``os.replace``: a reader, or a crash, sees the old content or the new, never a mix.

    ``durable``: the data and the rename reach the disk before this returns (users' files).
    ``prepare(temporary)`` runs before the rename and may refuse it (returns False: nothing
    is replaced, the temporary file is removed). Returns whether ``path`` was replaced."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if prepare is not None and not prepare(temporary):
            os.unlink(temporary)
            return False
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    if durable:
        _sync_directory(directory)
    return True


def _sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (where the platform allows it)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
