"""CCL005 missing-retry: one transient network error stops the workflow.

- No retry policy: the flagged task's shadow raises one ``ConnectionError`` (only on its first
  attempt). Confirmed when the task ends FAILURE and the steps after it never run; then the same
  workflow is replayed with the suggested policy (retry on ``ConnectionError``, bounded, short
  countdown) and the evidence says whether it completes.
- ``max_retries=None``: the shadow fails on every attempt and retries with Celery's own
  ``Task.retry``; confirmed when it is still retrying (state RETRY, attempts growing) after the
  observation window while the later steps never ran; the bounded policy is shown to end.
"""
from __future__ import annotations

from typing import Any

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    named_task,
    not_reproduced,
    required,
    short,
)

FAULT = {"type": "ConnectionError",
         "message": "injected by celery-chain-lint verify: connection reset by peer"}
SUGGESTED = {"countdown": 0.1, "max_retries": 3}
FOREVER_WINDOW = 1.0


def _later_nodes(run, name: str):
    """Nodes of the workflow that are not the flagged task (the steps that depend on it)."""
    return [n for n in (run.built.nodes if run.built else ()) if n.task != name]


def _node_summary(run, name):
    return {n.role: run.observation.state(n.id) for n in _later_nodes(run, name)}


@confirms("CCL005")
def confirm_missing_retry(claim: Claim, context) -> Any:
    why = "the finding carries no workflow to replay"
    task = named_task(claim.replay, why).name
    workflow = required(claim.replay.replayed_workflows(), why)[0]
    forever = claim.replay.network is not None and claim.replay.network.problem == "forever"
    if forever:
        behaviour = {"raise": dict(FAULT, times=None),
                     "retry": {"countdown": 0.02, "max_retries": None}}
        run = context.run(workflow, {task: behaviour}, timeout=FOREVER_WINDOW, until="timeout",
                          repair=True, recover=False)
    else:
        behaviour = {"raise": dict(FAULT, times=1)}
        run = context.run(workflow, {task: behaviour}, repair=True, settle=0.2)
    evidence = context.evidence(run, predicted=claim.message, injected={
        task: ("ConnectionError on every attempt, retried with Task.retry and "
               "max_retries=None (the task's policy)") if forever
        else "one ConnectionError, on the first attempt only"})
    attempts = journal_runs(run, task)
    later = _node_summary(run, task)
    name = short(task)
    later_ran = [e for e in run.journal if e.get("task") != task
                 and e.get("start", 0) > (attempts[0].get("start", 0) if attempts else 0)]
    if forever:
        context.session.calm(run)
        bounded = context.run(workflow, {task: {"raise": dict(FAULT, times=None),
                                                "retry": dict(SUGGESTED)}}, repair=True,
                              settle=0.2)
        bounded_attempts = journal_runs(bounded, task)
        evidence["measured"] = {
            "attempts with max_retries=None": f"{len(attempts)} in {FOREVER_WINDOW:g}s, still "
                                              "retrying",
            "attempts with max_retries=3": f"{len(bounded_attempts)}, then "
                                           f"{_flagged_state(bounded, task)}",
        }
        states = {run.observation.state(n.id) for n in run.built.nodes if n.task == task} \
            if run.built else set()
        if len(attempts) > SUGGESTED["max_retries"] + 1 and not later_ran and \
                states & {"RETRY", "STARTED", "PENDING"}:
            return confirmed(f"{name} was attempted {len(attempts)} times in "
                             f"{FOREVER_WINDOW:g}s and was still retrying; the later steps "
                             f"never ran (with max_retries=3 it stopped after "
                             f"{len(bounded_attempts)} attempts)", **evidence)
        return not_reproduced(f"{name} was attempted {len(attempts)} times and did not keep "
                              "retrying", **evidence)
    state = _flagged_state(run, task)
    fixed = context.run(workflow, {task: {"raise": dict(FAULT, times=1),
                                          "retry": dict(SUGGESTED)}}, repair=True, settle=0.2)
    fixed_attempts = journal_runs(fixed, task)
    fixed_ok = fixed.observation is not None and fixed.observation.states and all(
        s.get("state") == "SUCCESS" for s in fixed.observation.states.values())
    evidence["measured"] = {
        "without retry": f"{name} {state} after {len(attempts)} attempt(s); later steps: "
                         f"{later or 'none'}",
        "with autoretry (ConnectionError, max_retries=3)":
            f"{len(fixed_attempts)} attempts, workflow "
            f"{'completed' if fixed_ok else 'did not complete'} in {fixed.elapsed:.2f}s",
    }
    if state == "FAILURE" and not later_ran:
        reason = (f"one ConnectionError failed {name} and the workflow stopped: the later "
                  f"steps never ran ({', '.join(f'{k} {v}' for k, v in later.items()) or 'none'})")
        if fixed_ok:
            reason += (f"; with a bounded retry policy the same workflow completed after "
                       f"{len(fixed_attempts)} attempts")
        return confirmed(reason, **evidence)
    return not_reproduced(f"{name} ended {state} after a transient ConnectionError and the "
                          "workflow went on", **evidence)


def _flagged_state(run, task: str) -> str:
    if run.built is None or run.observation is None:
        return "not run"
    states = [run.observation.state(n.id) for n in run.built.nodes if n.task == task]
    return states[0] if states else "not in the workflow"
