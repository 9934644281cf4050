"""CCL008 chord-without-results: run the chord where its results should be collected.

- The app has no result backend: the chord is applied from a client app without one;
  confirmed on ``NotImplementedError: Starting chords requires a result backend``.
- ``rpc://``: applied from a client app on the ``rpc://`` backend; confirmed on
  ``NotImplementedError: The "rpc" result backend does not support chords!``.
- Header tasks ignore their results: the chord runs on the backend in use with those shadows
  ``ignore_result=True``. The outcome depends on the backend, and so does the verdict:
  confirmed when the body never runs within the window (database, cache, file-system backends),
  ``not-reproduced`` with that reason when the backend tolerates it (Redis).
"""
from __future__ import annotations

from typing import Any, Optional

from celery_chain_lint.harness.confirmers import (
    Claim,
    confirmed,
    confirms,
    journal_runs,
    not_reproduced,
    required,
)
from celery_chain_lint.workflow.replay import (
    ReplayChain,
    ReplayChord,
    ReplayGroup,
    ReplaySignature,
    ReplayWorkflow,
    walk,
)

WINDOW = 1.0


def _body_task(workflow: ReplayWorkflow) -> Optional[str]:
    """The first task of the chord's body: a chord's, or what follows a group in a chain."""
    def first_signature(node) -> Optional[str]:
        return next((inner.task for inner in walk(node) if isinstance(inner, ReplaySignature)),
                    None)

    for found in walk(workflow.canvas):
        bodies = [found.body] if isinstance(found, ReplayChord) else [
            found.steps[index + 1] for index, step in enumerate(found.steps[:-1])
            if isinstance(step, ReplayGroup)] if isinstance(found, ReplayChain) else []
        for body in bodies:
            task = first_signature(body)
            if task is not None:
                return task
    return None


@confirms("CCL008")
def confirm_chord_without_results(claim: Claim, context) -> Any:
    replay = claim.replay
    workflow = required(replay.workflow, "the replay data holds no workflow")
    kind = replay.app.backend_kind if replay.app is not None else None
    if kind in ("none", "rpc"):
        override = {"result_backend": None if kind == "none" else "rpc://"}
        client = context.session.client_app(**override)
        try:
            run = context.run(workflow, app=client, repair=True,
                              timeout=min(context.timeout, 3.0), fill_dynamic=True)
        finally:
            client.close()
        # The client app raises, or not, whatever became of the worker.
        evidence = context.evidence(run, predicted=claim.message, runs={})
        evidence["client_backend"] = "none" if kind == "none" else "rpc://"
        if isinstance(run.raised, NotImplementedError):
            message = str(run.raised).splitlines()[0]
            return confirmed(f"NotImplementedError: {message}", **evidence)
        if run.raised is not None:
            return not_reproduced(f"applying the chord raised {type(run.raised).__name__}: "
                                  f"{run.raised}", **evidence)
        return not_reproduced("the chord was applied without an error", **evidence)
    ignoring = list(required(replay.ignoring, "the replay data says neither the backend "
                                              "problem nor which header tasks ignore results"))
    body = _body_task(workflow)
    body_ids = set()

    def prepare(built):
        body_ids.update(n.id for n in built.nodes if n.task == body)

    def body_done(states):
        return any(states.get(i, {}).get("state") in ("SUCCESS", "FAILURE") for i in body_ids)

    window = min(context.timeout, WINDOW)
    run = context.run(workflow, repair=True, timeout=window, until="timeout",
                      stop_when=body_done, prepare=prepare, recover=False)
    backend = context.env.describe()
    evidence = context.evidence(run, predicted=claim.message,
                                backend_kind=backend.get("backend_kind"), ignoring=ignoring)
    header_runs = sum(len(journal_runs(run, name)) for name in set(ignoring))
    body_runs = journal_runs(run, body) if body else []
    evidence["measured"] = {"header task runs": header_runs, "body runs": len(body_runs),
                            "window_s": window}
    if body_runs:
        return not_reproduced(f"the {backend.get('backend_kind')} backend tolerates it: the "
                              f"body ran {run.elapsed:.2f}s after the chord was applied, "
                              "although its header tasks ignore results (Celery's documentation "
                              "still requires them to store results)", **evidence)
    # Without a counter (database backend...), celery.chord_unlock retries forever in the
    # worker: a fresh worker for the next findings. Counting backends leave nothing running.
    if not getattr(context.session.app.backend, "implements_incr", False):
        context.session.recover("a chord that never fires (celery.chord_unlock retrying)")
    if run.raised is not None:
        return not_reproduced(f"applying the chord raised {type(run.raised).__name__}: "
                              f"{run.raised}", **evidence)
    return confirmed(f"on the {backend.get('backend_kind')} backend the body never ran: "
                     f"{header_runs} header task run(s) finished and {window:g}s later the "
                     "body had still not been sent", **evidence)
