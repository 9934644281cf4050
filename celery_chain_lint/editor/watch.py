"""``check --watch``: run the check again whenever a file it reads changes, as ``ruff check
--watch`` does.

Changes are found by polling modification times twice a second: no file-system notification
library (one dependency less), and it works the same on every file system, network mounts and
containers' bind mounts included. Each run is a fresh ``check`` process with the same
arguments, so it reports exactly what a plain ``check`` would (the analysis cache keeps re-runs
fast). Ctrl-C stops both, and the command exits 130.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Dict, Iterator, List, Sequence, TextIO, Tuple

from celery_chain_lint.config.settings import DEFAULT_EXCLUDES

POLL_SECONDS = 0.5
# Besides Python files: what changes the configuration, so the findings.
WATCHED_NAMES = frozenset({"pyproject.toml", "celery-chain-lint.toml", ".gitignore"})


def watch(paths: Sequence[str], command: List[str], poll: float = POLL_SECONDS,
          status: TextIO = sys.stderr) -> None:
    """Run ``command`` now and after every change under ``paths``; returns only by an
    exception (KeyboardInterrupt)."""
    previous = None
    while True:
        state = snapshot(paths)  # before the run: a change made during it starts another
        if state != previous:
            if previous is not None:
                _say(status, "File change detected, checking again.")
            previous = state
            sys.stdout.flush()
            subprocess.run(command, check=False)
            _say(status, "Watching for file changes.")
        time.sleep(poll)


def snapshot(paths: Sequence[str]) -> Dict[str, Tuple[int, int]]:
    """(mtime, size) of every watched file under ``paths`` and of the configuration files of
    the working directory: a file added, removed or edited changes it."""
    state = {}
    for path in list(_watched_files(paths)) + [name for name in WATCHED_NAMES
                                               if os.path.isfile(name)]:
        try:
            info = os.stat(path)
        except OSError:
            continue
        state[path] = (info.st_mtime_ns, info.st_size)
    return state


def _watched_files(paths: Sequence[str]) -> Iterator[str]:
    for given in paths:
        if os.path.isfile(given):
            yield given
            continue
        for directory, subdirs, files in os.walk(given):
            subdirs[:] = [name for name in subdirs if name not in DEFAULT_EXCLUDES]
            for name in files:
                if name.endswith(".py") or name in WATCHED_NAMES:
                    yield os.path.join(directory, name)


def _say(stream: TextIO, message: str) -> None:
    stream.write(f"[{datetime.now():%H:%M:%S}] {message}\n")
    stream.flush()
