"""The embedded default's result backend: Celery's file-system backend, made safe to share.

Two changes to Celery's ``FilesystemBackend``, both about the worker and the harness reading
and writing the same directory from different processes:

- writes are atomic (a temporary file renamed over the old one), so a reader polling a result
  (the harness, or a chord's join in the worker) never reads half a file;
- ``incr`` under a file lock, so chords count their finished header tasks like the Redis and
  cache backends do (``implements_incr``) and the body is sent as soon as the last header task
  returns, instead of ``celery.chord_unlock`` polling every second.
"""
from __future__ import annotations

import fcntl
import os

from celery.backends.filesystem import FilesystemBackend
from kombu.utils.encoding import ensure_bytes

from celery_chain_lint.load import write_atomically

SCHEME = "celery_chain_lint.harness.filebackend:AtomicFilesystemBackend"


def backend_url(directory: str) -> str:
    return f"{SCHEME}+file://{directory}"


class AtomicFilesystemBackend(FilesystemBackend):
    implements_incr = True

    def set(self, key, value):
        write_atomically(os.fsdecode(self._filename(key)), ensure_bytes(value))

    def incr(self, key):
        target = self._filename(key)
        with open(target + b".lock", "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                current = self.get(key)
                value = int(current or 0) + 1
                self.set(key, str(value).encode())
                return value
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def expire(self, key, value):
        pass  # the run's directory is removed at the end

    def delete(self, key):
        try:
            super().delete(key)
        except FileNotFoundError:
            pass
        try:
            os.unlink(self._filename(key) + b".lock")
        except FileNotFoundError:
            pass
