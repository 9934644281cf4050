"""CCL006 wait-in-task: Celery refuses to wait for a result inside a task.

The flagged task's shadow waits the way the source does (``.get()``, ``.wait()``, ``.join()``,
``.join_native()``, ``.collect()``) on a result, inside a real worker process: the harness's
worker is a subprocess (``celery worker``), where the guard is on, unlike under
``celery.contrib.testing.worker.start_worker`` which turns it off. Confirmed on
``RuntimeError: Never call result.get() within a task!``.
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import confirmed, confirms, not_reproduced, skipped

WAIT_SECONDS = 2.0


@confirms("CCL006")
def confirm_wait_in_task(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay") or {}
    task = replay.get("task") or {}
    name = task.get("name")
    if not name:
        return skipped("the replay data does not name the waiting task")
    method = replay.get("wait_method") or "get"
    alone = {"canvas": {"type": "signature", "task": name, "args": [], "kwargs": {},
                        "immutable": True, "via": "si", "flagged": False, "options": {}},
             "application": None, "callbacks": [], "tasks": {name: task}}
    behaviour = {name: {"wait": WAIT_SECONDS, "wait_method": method}}
    # repair: the lone signature gets a placeholder for every required parameter.
    run = context.run(alone, behaviour, repair=True,
                      stop_when=lambda states: any(s.get("state") == "FAILURE"
                                                   for s in states.values()))
    evidence = context.evidence(run, predicted=finding.get("message"))
    evidence["injected"] = {name: f"calls .{method}() on a result inside the task, as line "
                                  f"{replay.get('line')} does"}
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    failures = run.exceptions()
    guard = [f for f in failures if f["type"] == "RuntimeError"
             and "within a task" in f["message"]]
    if guard:
        evidence["exception"] = {"type": "RuntimeError", "message": guard[0]["message"],
                                 "where": "inside the worker (a celery worker process, "
                                          "threads pool)"}
        return confirmed(f"RuntimeError: {guard[0]['message']}", **evidence)
    if failures:
        return not_reproduced(f"the task failed differently: {failures[0]['type']}: "
                              f"{failures[0]['message']}", **evidence)
    return not_reproduced("the wait was not refused", **evidence)
