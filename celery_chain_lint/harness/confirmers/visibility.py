"""CCL026 countdown-beyond-visibility-timeout: replayed on Redis with a short visibility timeout.

Needs a Redis broker (``verify --broker redis://...``): the redelivery is kombu's Redis
transport's. The task's shadow runs on a worker of its own, on a queue of its own
(``ccl-verify-<id>.vt``), whose transport options make the same thing happen in seconds:
``visibility_timeout`` 1 s, restore sweeps every second. The flagged delay is replayed as 2.5 s
(longer than that timeout, as the source's delay is longer than the app's): the task applied
with ``countdown=2.5``, or (a retry delay) failing once and retrying with ``countdown=2.5``.
Confirmed when that one task id ran more than once at its ETA, while a contrast with a delay
shorter than the timeout (0.3 s) ran once.
"""
from __future__ import annotations

from typing import Any, Dict

from celery_chain_lint.harness.confirmers import (
    confirmed,
    confirms,
    not_reproduced,
    skipped,
)

VISIBILITY = 1
DELAY = 2.5
SHORT_DELAY = 0.3


def _replay(name: str, task: Dict[str, Any], how: str, delay: float):
    signature = {"type": "signature", "task": name, "args": [], "kwargs": {}, "immutable": True,
                 "via": "si", "flagged": False, "options": {}}
    if how == "retry":
        return ({"canvas": signature, "application": None, "callbacks": [],
                 "tasks": {name: task}},
                {name: {"raise": {"type": "InjectedFailure", "times": 1,
                                  "message": "injected by celery-chain-lint verify: retry"},
                        "retry": {"countdown": delay, "max_retries": 1}}})
    return ({"canvas": signature, "callbacks": [], "tasks": {name: task},
             "application": {"how": "apply_async", "args": [], "kwargs": {},
                             "options": {"countdown": delay}}}, {})


def _runs(session, name, task, how, delay):
    replay, behaviours = _replay(name, task, how, delay)
    run = session.run(replay, behaviours, timeout=delay + 8, settle=0.3, quiet=1.0,
                      repair=True)
    node = run.built.nodes[0].id if run.built and run.built.nodes else None
    attempt = 1 if how == "retry" else 0
    executions = [e for e in run.journal if e.get("id") == node
                  and (e.get("retries") or 0) == attempt]
    return run, executions


@confirms("CCL026")
def confirm_visibility_timeout(finding: Dict[str, Any], context) -> Any:
    replay = finding.get("replay")
    task = (replay or {}).get("task") or {}
    name = task.get("name")
    if not name:
        return skipped("the finding carries no replay data naming the task")
    env = context.env
    scheme = (env.broker or "").split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss"):
        return skipped("the redelivery is kombu's Redis transport's: run verify with a Redis "
                       "broker (--broker redis://...) to replay it")
    queue = f"{env.queue}.vt"
    session = context.batch.session_with(context.verifier, "short-visibility", {
        "broker_transport_options": {"visibility_timeout": VISIBILITY,
                                     "unacked_restore_interval": 1,
                                     "unacked_restore_throttle": 1},
        "task_default_queue": queue, "task_default_exchange": queue,
        "task_default_routing_key": queue,
    })
    how = replay.get("how") or "apply_async"
    run, executions = _runs(session, name, task, how, DELAY)
    evidence = context.evidence(run, predicted=finding.get("message"))
    short = name.rsplit(".", 1)[-1]
    written = "countdown" if how != "retry" else "retry countdown"
    evidence.setdefault("notes", []).append(
        f"{replay.get('kind')}={replay.get('seconds')} s against a visibility_timeout of "
        f"{replay.get('visibility_timeout')} s, replayed as {written}={DELAY:g} s against "
        f"visibility_timeout={VISIBILITY} s (restore sweeps every 1 s) on the queue {queue}")
    if run.worker_died:
        return skipped(f"the worker {run.worker_died} during the run", **evidence)
    _, contrast = _runs(session, name, task, how, SHORT_DELAY)
    evidence["measured"] = {f"{short} runs ({written} {DELAY:g} s)": len(executions),
                            f"{short} runs ({written} {SHORT_DELAY:g} s)": len(contrast),
                            "started at": [round(e.get("start", 0) - (run.start_wall or 0), 2)
                                           for e in executions]}
    if len(executions) >= 2 and len(contrast) == 1:
        return confirmed(f"{short} ran {len(executions)} times under one task id at its ETA "
                         f"({written} {DELAY:g} s > visibility_timeout {VISIBILITY} s); with "
                         f"{SHORT_DELAY:g} s it ran once", **evidence)
    return not_reproduced(f"{short} ran {len(executions)} time(s) with {written} {DELAY:g} s "
                          f"and {len(contrast)} with {SHORT_DELAY:g} s", **evidence)
