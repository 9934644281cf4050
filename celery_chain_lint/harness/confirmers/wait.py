"""CCL006 wait-in-task: Celery refuses to wait for a result inside a task.

The flagged task's shadow waits the way the source does (``.get()``, ``.wait()``, ``.join()``,
``.join_native()``, ``.collect()``) on a result, inside a real worker process: the harness's
worker is a subprocess (``celery worker``), where the guard is on, unlike under
``celery.contrib.testing.worker.start_worker`` which turns it off. Confirmed on
``RuntimeError: Never call result.get() within a task!``.
"""
from __future__ import annotations

from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    alone,
    confirmed,
    confirms,
    named_task,
    not_reproduced,
)

WAIT_SECONDS = 2.0


@confirms("CCL006")
def confirm_wait_in_task(claim: Claim, context) -> Any:
    name = named_task(claim.replay, "the replay data does not name the waiting task").name
    wait = claim.replay.wait
    method = (wait.method if wait else None) or "get"
    behaviour = {name: {"wait": WAIT_SECONDS, "wait_method": method}}
    # repair: the lone signature gets a placeholder for every required parameter.
    run = context.run(alone(name), behaviour, repair=True,
                      stop_when=lambda states: any(s.get("state") == "FAILURE"
                                                   for s in states.values()))
    evidence = context.evidence(run, predicted=claim.message, injected={
        name: f"calls .{method}() on a result inside the task, as line "
              f"{wait.line if wait else None} does"})
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
