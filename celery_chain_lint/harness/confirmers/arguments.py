"""CCL001 / CCL002: the arguments do not bind, and Celery raises the TypeError the finding predicts.

Where it shows on a real worker (Celery 5.7, ``typing=True``):

- the first link, a group member, a chord header, ``delay``/``apply_async``: raised in the
  caller when the message is published;
- a later chain link or a ``link`` callback: raised inside the worker while publishing it; the
  PREVIOUS task is stored as FAILURE although its body ran, and the later links stay PENDING;
- a chord body: the body's result is ``ChordError("Callback error: TypeError(...)")``;
- an errback: the failed task's own exception is overwritten by the TypeError;
- a class-based task (not type-checked when published) or ``typing=False``: the task itself
  fails with the TypeError on the worker.

So every node is polled, and the TypeError counts only when it names the flagged task.
An errback only runs when its parent fails: the parent's shadow is made to raise.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    first_task,
    flagged_in,
    function_name,
    not_reproduced,
    required,
)
from celery_chain_lint.workflow.replay import ReplayWorkflow


def is_type_error(failure: Dict[str, Any]) -> bool:
    return failure.get("type") == "TypeError" or "TypeError" in (failure.get("message") or "")


def names_task(failure: Dict[str, Any], fname: Optional[str]) -> bool:
    if not fname:
        return True
    message = failure.get("message") or ""
    return f"{fname}()" in message or f"{fname}.run()" in message


def type_error_seen(fname: Optional[str]):
    def stop(states: Dict[str, Dict[str, Any]]) -> bool:
        for state in states.values():
            text = state.get("exception") or ""
            if state.get("state") == "FAILURE" and "TypeError" in text and (
                    not fname or f"{fname}()" in text or f"{fname}.run()" in text):
                return True
        return False
    return stop


def failure_behaviours(workflow: ReplayWorkflow) -> Dict[str, Any]:
    """An errback runs only when its parent fails: make the parent's first task raise."""
    if not any(c.kind == "error" for c in workflow.callbacks):
        return {}
    parent = first_task(workflow.canvas)
    if parent is None:
        return {}
    return {parent: {"raise": {"type": "InjectedFailure",
                               "message": "injected so that the errback runs"}}}


def describe_where(failure: Dict[str, Any], flagged_role: Optional[str]) -> str:
    if failure.get("role") is None:
        return failure["where"]
    if flagged_role and failure["role"] != flagged_role:
        return (f"inside the worker: stored as FAILURE on {failure['role']} "
                f"({failure['task']}), not on the flagged task")
    return f"inside the worker: stored as FAILURE on {failure['role']} ({failure['task']})"


@confirms("CCL001", "CCL002")
def confirm_arguments(claim: Claim, context) -> Any:
    replay = claim.replay
    workflow = required(replay.workflow, "the replay data holds no workflow")
    flagged = flagged_in(workflow)
    task = (flagged.task if flagged else None) or replay.flagged_task
    fname = function_name(replay, task)
    behaviours = failure_behaviours(workflow)
    run = context.run(workflow, behaviours, stop_when=type_error_seen(fname))
    failures = run.exceptions()
    if (not any(is_type_error(f) and names_task(f, fname) for f in failures)
            and any(is_type_error(f) for f in failures) and not run.worker_died):
        # Another signature of the workflow (another finding) failed first: replay again with
        # every other signature given complete arguments, to reach the flagged one.
        run = context.run(workflow, behaviours, stop_when=type_error_seen(fname), repair=True)
    extra = {"injected": {name: "raises InjectedFailure so that the errback runs"
                          for name in behaviours}} if behaviours else {}
    evidence = context.evidence(run, predicted=claim.message, **extra)
    flagged_role = next((n.role for n in (run.built.nodes if run.built else ()) if n.flagged),
                        None)
    failures: List[Dict[str, Any]] = run.exceptions()
    matching = [f for f in failures if is_type_error(f) and names_task(f, fname)]
    if matching:
        failure = matching[0]
        evidence["exception"] = {"type": failure["type"], "message": failure["message"],
                                 "where": describe_where(failure, flagged_role)}
        reason = f"{failure['type']}: {failure['message']}"
        if failure.get("role") is not None and failure["role"] != flagged_role:
            ran = [n for n in evidence.get("nodes", ()) if n.get("role") == failure["role"]]
            if ran and ran[0].get("executions"):
                evidence.setdefault("notes", []).append(
                    f"{failure['task']} ran its body and was still marked FAILURE; "
                    "the later links never ran")
        return confirmed(reason, **evidence)
    others = [f for f in failures if is_type_error(f)]
    if others:
        evidence["exception"] = {"type": others[0]["type"], "message": others[0]["message"],
                                 "where": describe_where(others[0], flagged_role)}
        return not_reproduced(f"a TypeError was raised, but not for {fname}: "
                              f"{others[0]['message']}", **evidence)
    if run.timed_out:
        return not_reproduced(f"no TypeError within {context.timeout:g}s (the workflow did "
                              "not finish)", **evidence)
    if failures:
        first = failures[0]
        return not_reproduced(f"the workflow failed differently: {first['type']}: "
                              f"{first['message']}", **evidence)
    return not_reproduced("the workflow ran to completion: every node succeeded", **evidence)
