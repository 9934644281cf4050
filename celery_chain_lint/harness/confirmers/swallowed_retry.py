"""CCL012 swallowed-retry: the task's shadow runs alone; its body calls
``raise self.retry(countdown=0, max_retries=1)`` inside a handler catching what the flagged
one catches, and swallows it. Confirmed when the first run ends SUCCESS and the retry message
runs the body again (journal); a contrast run with a re-raising handler shows RETRY, then
FAILURE (MaxRetriesExceededError). A retry of another task is skipped."""
from __future__ import annotations

from typing import Any, Tuple

from celery_chain_lint.harness.confirmers import (
    CannotConfirm,
    Claim,
    alone,
    confirmed,
    confirms,
    journal_runs,
    named_task,
    not_reproduced,
    short,
)


def swallowing_handler(claim: Claim, another_tasks: str) -> Tuple[str, Any, str]:
    """The task replayed, the handler the rule found (or None) and what it catches, for
    CCL012 and CCL023 (the rules' ``swallowed_task_calls``); a call on another task is not
    replayed: skipped with ``another_tasks`` as the reason."""
    handler = claim.replay.handler
    name = named_task(claim.replay).name
    if handler is not None and not handler.itself:
        raise CannotConfirm(another_tasks)
    return name, handler, (handler.catches if handler else None) or "builtins.Exception"


SWALLOW_MAX_RETRIES = 1
CAUGHT_TEXT = {"builtins.BaseException": "BaseException (a bare except: catches the same)"}


def _run_swallowing(context, name: str, catches: str, reraise: bool):
    behaviour = {name: {"swallow_retry": {"catches": catches, "reraise": reraise,
                                          "max_retries": SWALLOW_MAX_RETRIES}}}
    # The first run's end (SUCCESS, or FAILURE after the re-raised retries) ends the
    # observation; ``quiet`` then waits for the run the retry message causes.
    run = context.run(alone(name), behaviour, repair=True, settle=0.3, quiet=1.0)
    final = None
    if run.built is not None and run.built.nodes:
        from celery_chain_lint.harness.replayer import snapshot

        node = run.built.nodes[0].id
        final = snapshot(context.session.app, [node]).get(node, {})
    return run, final


@confirms("CCL012")
def confirm_swallowed_retry(claim: Claim, context) -> Any:
    name, handler, catches = swallowing_handler(
        claim, "the retry() called is another task's: the harness replays a task retrying "
               "itself only")
    run, final = _run_swallowing(context, name, catches, reraise=False)
    task = short(name)
    caught = CAUGHT_TEXT.get(catches, catches.rsplit(".", 1)[-1])
    evidence = context.evidence(run, predicted=claim.message, injected={
        name: f"the shadow's body does `try: raise self.retry(countdown=0, "
              f"max_retries={SWALLOW_MAX_RETRIES})` and catches {caught} without re-raising, "
              f"as {handler.handler if handler else None} does"})
    executions = journal_runs(run, name)
    first = run.observation.state(run.built.nodes[0].id) \
        if run.built and run.built.nodes and run.observation else None
    # Contrast: the same body with a handler that re-raises.
    context.session.calm(run)
    other, other_final = _run_swallowing(context, name, catches, reraise=True)
    other_runs = journal_runs(other, name)
    evidence["measured"] = {
        "swallowing handler": {"state after the first run": first,
                               "final state": (final or {}).get("state"),
                               "body runs": len(executions),
                               "runs": [{"retries": e.get("retries"),
                                         "outcome": e.get("outcome"),
                                         "caught": e.get("caught")} for e in executions]},
        "re-raising handler": {"final state": (other_final or {}).get("state"),
                               "final exception": (other_final or {}).get("exception"),
                               "body runs": len(other_runs),
                               "runs": [{"retries": e.get("retries"),
                                         "outcome": e.get("outcome")} for e in other_runs]},
    }
    swallowed = [e for e in executions if str(e.get("outcome", "")).startswith("swallowed")]
    if first == "SUCCESS" and len(executions) >= 2 and swallowed:
        end = (final or {}).get("state")
        contrast = (f"; with a handler that re-raises, the first run is recorded as a retry "
                    f"({other_runs[0].get('outcome')}) and the task ends "
                    f"{(other_final or {}).get('state')}") if other_runs else ""
        return confirmed(f"{task} caught its own Retry ({swallowed[0].get('caught')}), ended "
                         f"SUCCESS, and the retry message already sent ran its body again: "
                         f"{len(executions)} runs, final state {end}{contrast}", **evidence)
    if not executions:
        return not_reproduced(f"{task} did not run", **evidence)
    return not_reproduced(f"{task} ended {first} after its first run and its body ran "
                          f"{len(executions)} time(s)", **evidence)
