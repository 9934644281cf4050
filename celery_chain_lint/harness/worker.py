"""The worker: a real ``celery worker`` in its own process, serving the shadow tasks.

A separate process matters: ``celery.contrib.testing.worker.start_worker`` switches off the
guard that refuses ``result.get()`` inside a task, and a worker that dies or hangs must not
take the harness with it. The parent writes a JSON config (Celery settings, shadow task
specs, control and journal paths) and starts ``python -m celery_chain_lint.harness.worker
CONFIG``; the worker writes a ready file once it consumes, and exits when its parent goes away.

Pool: ``threads`` (concurrency 8 by default), so a group really runs in parallel (CCL003) and
the join guard is on, as under prefork.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from celery_chain_lint.harness.environment import InfrastructureError
from celery_chain_lint.load import write_atomically

DEFAULT_POOL = "threads"
DEFAULT_CONCURRENCY = 8


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    parent = config.get("parent_pid")
    if parent:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()

    from celery.signals import worker_ready

    from celery_chain_lint.harness.shadow import build_app

    app = build_app(config)
    app.set_current()
    app.set_default()

    from celery.signals import task_retry

    @task_retry.connect(weak=False)
    def _unlock_retried(sender=None, request=None, **_kwargs):
        # celery.chord_unlock ignores results: its retries are journaled here (CCL027).
        if getattr(sender, "name", None) != "celery.chord_unlock":
            return
        now = time.time()
        args = getattr(request, "args", None) or ()
        callback = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        app.ccl_journal.record({"run": app.ccl_control.data().get("run"),
                                "task": "celery.chord_unlock",
                                "id": getattr(request, "id", None), "event": "retry",
                                "body": (callback.get("options") or {}).get("task_id"),
                                "start": now, "end": now})

    @worker_ready.connect(weak=False)
    def _ready(**_kwargs):
        ready = {"pid": os.getpid(), "time": time.time()}
        write_atomically(config["ready"], json.dumps(ready).encode("utf-8"))

    app.worker_main([
        "worker",
        f"--pool={config.get('pool', DEFAULT_POOL)}",
        f"--concurrency={config.get('concurrency', DEFAULT_CONCURRENCY)}",
        "--queues=" + ",".join(q for q in (config["conf"]["task_default_queue"],
                                           config.get("alt_queue")) if q),
        f"--hostname={config.get('hostname', 'ccl-verify@%h')}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--loglevel={config.get('loglevel', 'WARNING')}",
    ])


def _set_parent_death_signal() -> None:  # runs in the child before exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the watcher thread covers it
        pass


class WorkerProcess:
    """The parent's handle on one worker subprocess."""

    def __init__(self, config: Dict[str, Any], directory: str, startup_timeout: float = 30.0):
        self.config = dict(config)
        self.directory = directory
        self.startup_timeout = startup_timeout
        self.process: Optional[subprocess.Popen] = None
        self.generation = 0
        self.log_path = os.path.join(directory, "worker.log")
        self.started_in: Optional[float] = None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_description(self) -> str:
        if self.process is None:
            return "not started"
        code = self.process.poll()
        if code is None:
            return "running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:]).rstrip()
        except OSError:
            return ""

    def start(self) -> None:
        self.generation += 1
        config = dict(self.config)
        config["parent_pid"] = os.getpid()
        config["ready"] = os.path.join(self.directory, f"worker-{self.generation}.ready")
        config["hostname"] = f"{config['conf']['task_default_queue']}-{self.generation}@%h"
        path = os.path.join(self.directory, f"worker-{self.generation}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        env = dict(os.environ)
        env.pop("CELERY_CONFIG_MODULE", None)
        env["PYTHONUNBUFFERED"] = "1"
        # The harness package must be importable by the child exactly as it is by us.
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery_chain_lint.harness.worker", path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory, env=env, start_new_session=True,
                preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
            )
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            if os.path.exists(config["ready"]):
                self.started_in = time.monotonic() - started
                return
            if self.process.poll() is not None:
                tail = self.log_tail()
                raise InfrastructureError(
                    f"the worker failed to start ({self.exit_description()})"
                    + (f":\n{tail}" if tail else ""))
            time.sleep(0.02)
        tail = self.log_tail()
        self.stop()
        raise InfrastructureError(f"the worker did not become ready within "
                                  f"{self.startup_timeout:g}s" + (f":\n{tail}" if tail else ""))

    def stop(self, grace: float = 1.0) -> None:
        """Warm shutdown, then SIGKILL of the whole process group; never leaves a process.

        The grace is short on purpose: the worker only notices a signal between two polls of
        the broker (up to seconds on polling transports), and everything the run owns (queue,
        keys, directory) is removed afterwards anyway, so nothing is lost by killing it.
        """
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass
        self.process = None

    def kill(self) -> None:
        """Kill the worker at once (the hung-workflow path: a sleeping thread cannot be stopped)."""
        self.stop(grace=0.0)

    def restart(self) -> None:
        self.stop(grace=1.0)
        self.start()


if __name__ == "__main__":
    main()
