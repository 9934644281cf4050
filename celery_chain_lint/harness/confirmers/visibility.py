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

from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    alone,
    confirmed,
    confirms,
    named_task,
    not_reproduced,
    required,
    short,
    skipped,
)
from celery_chain_lint.workflow.replay import ReplayApplication, ReplayWorkflow

VISIBILITY = 1
DELAY = 2.5
SHORT_DELAY = 0.3


def _replay(name: str, how: str, delay: float):
    """The task alone, delayed by ``delay`` as the source delays it: (workflow, behaviours)."""
    if how == "retry":
        return (alone(name),
                {name: {"raise": {"type": "InjectedFailure", "times": 1,
                                  "message": "injected by celery-chain-lint verify: retry"},
                        "retry": {"countdown": delay, "max_retries": 1}}})
    application = ReplayApplication("apply_async", options={"countdown": delay})
    return ReplayWorkflow(alone(name).canvas, application), {}


def _runs(session, name, how, delay):
    replay, behaviours = _replay(name, how, delay)
    run = session.run(replay, behaviours, timeout=delay + 8, settle=0.3, quiet=1.0,
                      repair=True)
    node = run.built.nodes[0].id if run.built and run.built.nodes else None
    attempt = 1 if how == "retry" else 0
    executions = [e for e in run.journal if e.get("id") == node
                  and (e.get("retries") or 0) == attempt]
    return run, executions


@confirms("CCL026")
def confirm_visibility_timeout(claim: Claim, context) -> Any:
    name = named_task(claim.replay, "the finding carries no replay data naming the task").name
    delay = required(claim.replay.long_delay, "the replay data does not say which delay")
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
    how = delay.how or "apply_async"
    run, executions = _runs(session, name, how, DELAY)
    task = short(name)
    written = "countdown" if how != "retry" else "retry countdown"
    evidence = context.evidence(run, predicted=claim.message, notes=[
        f"{delay.kind}={delay.seconds} s against a visibility_timeout of "
        f"{delay.visibility_timeout} s, replayed as {written}={DELAY:g} s against "
        f"visibility_timeout={VISIBILITY} s (restore sweeps every 1 s) on the queue {queue}"])
    _, contrast = _runs(session, name, how, SHORT_DELAY)
    evidence["measured"] = {f"{task} runs ({written} {DELAY:g} s)": len(executions),
                            f"{task} runs ({written} {SHORT_DELAY:g} s)": len(contrast),
                            "started at": [round(e.get("start", 0) - (run.start_wall or 0), 2)
                                           for e in executions]}
    if len(executions) >= 2 and len(contrast) == 1:
        return confirmed(f"{task} ran {len(executions)} times under one task id at its ETA "
                         f"({written} {DELAY:g} s > visibility_timeout {VISIBILITY} s); with "
                         f"{SHORT_DELAY:g} s it ran once", **evidence)
    return not_reproduced(f"{task} ran {len(executions)} time(s) with {written} {DELAY:g} s "
                          f"and {len(contrast)} with {SHORT_DELAY:g} s", **evidence)
