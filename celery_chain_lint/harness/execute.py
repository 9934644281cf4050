"""``verify --execute`` (CCL004): run the user's real task and measure what it returns.

This is the one place where verify runs the project's code, and only when asked. It happens in
a child process (``python -m celery_chain_lint.harness.execute REQUEST``) with a time limit, so
whatever the import does stays out of the harness: the child imports the task's module with the
project root on ``sys.path``, runs the task eagerly (``Task.apply``: the body in this process,
no broker) with the literal arguments of the source, and serializes the return value the way
the worker would (the task's or the app's result serializer). It prints one JSON object.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List


def _find_task(module, name: str, display: str):
    from celery import Task

    for value in vars(module).values():
        if isinstance(value, Task) and getattr(value, "name", None) == name:
            return value
    candidate = getattr(module, display, None)
    if isinstance(candidate, Task):
        return candidate
    from celery import current_app

    return current_app.tasks.get(name)


def child(request: Dict[str, Any]) -> Dict[str, Any]:
    import importlib

    sys.path.insert(0, request["root"])
    started = time.monotonic()
    module = importlib.import_module(request["module"])
    task = _find_task(module, request["task"], request.get("display") or "")
    if task is None:
        return {"error": f"task {request['task']!r} not found after importing {module.__name__}"}
    result = task.apply(args=request.get("args") or [], kwargs=request.get("kwargs") or {})
    elapsed = time.monotonic() - started
    if result.failed():
        exc = result.result
        return {"failed": f"{type(exc).__name__}: {exc}", "elapsed_s": round(elapsed, 4)}
    value = result.result
    from kombu.exceptions import EncodeError
    from kombu.serialization import dumps

    serializer = getattr(task, "serializer", None) or task.app.conf.result_serializer or "json"
    out: Dict[str, Any] = {"type": type(value).__name__, "serializer": serializer,
                           "elapsed_s": round(elapsed, 4)}
    try:
        _, _, data = dumps(value, serializer=serializer)
        out["result_bytes"] = len(data)
        _, _, message = dumps([[value], {}, {"callbacks": None, "errbacks": None,
                                             "chain": None, "chord": None}],
                              serializer=task.app.conf.task_serializer or "json")
        out["next_message_bytes"] = len(message)
    except EncodeError as error:
        out["encode_error"] = f"EncodeError: {error}"
    except Exception as error:  # noqa: BLE001 - what the worker would hit
        out["encode_error"] = f"{type(error).__name__}: {error}"
    return out


def run_task(root: str, module: str, task: str, display: str, args: List[Any],
             kwargs: Dict[str, Any], timeout: float, workdir: str) -> Dict[str, Any]:
    """Run the child; a dict with the measurement or the problem."""
    path = os.path.join(workdir, f"execute-{os.getpid()}-{time.monotonic_ns()}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"root": root, "module": module, "task": task, "display": display,
                   "args": args, "kwargs": kwargs}, handle)
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run([sys.executable, "-m", "celery_chain_lint.harness.execute", path],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=root, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"error": f"the task did not return within {timeout:g}s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"importing or running the task failed: {tail[0]}"}
    return json.loads(lines[-1])


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    try:
        out = child(request)
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        out = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write("\n" + json.dumps(out, default=repr) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
