"""Every workflow of a project as replay data, and replaying them without a finding.

``verify`` replays findings; this replays *workflows*, flagged or not. The test suite uses it to
run every negative fixture and check that it runs clean on a real worker (the harness's shadows
must not invent failures), and it works for any project: a workflow that fails here although no
rule flags it is a false negative of the analyser or of the harness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from celery_chain_lint.harness.confirmers.arguments import failure_behaviours
from celery_chain_lint.harness.replayer import Unreplayable
from celery_chain_lint.workflow.replay import (
    Replay,
    ReplayCalled,
    ReplayChain,
    ReplayChord,
    ReplayGroup,
    ReplayWorkflow,
    walk,
)


@dataclass
class WorkflowReplay:
    path: str
    scope: str  # qualname of the enclosing function ("" at module level)
    line: Optional[int]
    replay: Replay  # its workflow, and the shadow specs of its tasks

    @property
    def workflow(self) -> ReplayWorkflow:
        return self.replay.workflow


def project_workflows(paths: Sequence[str]) -> List[WorkflowReplay]:
    """Every workflow the analyser models under ``paths`` (no rule involved)."""
    from celery_chain_lint.workflow.replay import workflow_replay

    project = _project(list(paths))
    found = []
    for workflow in project.workflows:
        span = getattr(workflow.canvas, "span", None)
        found.append(WorkflowReplay(workflow.module.path, workflow.scope,
                                    span.line if span is not None else None,
                                    workflow_replay(workflow)))
    return found


def _project(paths: List[str]):
    """The analysed project, as ``engine.check`` builds it (with its cache)."""
    from celery_chain_lint.load import load_project

    return load_project(paths)



def replay_clean(workflows: List[WorkflowReplay], options=None,
                 chunk: int = 20) -> List[Dict[str, Any]]:
    """Run each workflow once as written: ``clean`` (no failure, every node succeeded),
    ``failed`` (with what failed) or ``skipped`` (cannot be replayed, with why). Workflows that
    need no injected behaviour run ``chunk`` at a time on the worker."""
    from celery_chain_lint.harness.verify import Options, Verifier, plan_batches

    verifier = Verifier(options or Options())
    try:
        verifier.env.preflight()
    except BaseException:
        verifier.env.cleanup()
        raise
    outcomes: List[Optional[Dict[str, Any]]] = [None] * len(workflows)
    timeout = verifier.options.timeout
    try:
        for batch in plan_batches([w.replay for w in workflows]):
            try:
                session = None
                plain = []
                for index in batch.members:
                    workflow = workflows[index]
                    if isinstance(workflow.workflow.canvas, ReplayCalled):
                        outcomes[index] = _outcome(workflow, "skipped",
                                                   "not a canvas: a task called directly")
                        continue
                    session = session or batch.session_for(verifier)
                    behaviours = failure_behaviours(workflow.workflow)
                    # Chords run one at a time: two chord bodies joining their headers at
                    # once race on Celery's process-wide allow_join_result() under the
                    # threads pool ("Never call result.get() within a task!").
                    if not behaviours and not _has_chord(workflow.workflow):
                        plain.append(index)
                        continue
                    try:
                        run = session.run(workflow.workflow, behaviours, timeout=timeout)
                    except Unreplayable as error:
                        outcomes[index] = _outcome(workflow, "skipped", str(error))
                        continue
                    outcomes[index] = judge(workflow, run, behaviours)
                for first in range(0, len(plain), chunk):
                    members = plain[first:first + chunk]
                    runs = session.run_many([workflows[i].workflow for i in members],
                                            timeout=timeout)
                    for index, run in zip(members, runs):
                        if isinstance(run, Unreplayable):
                            outcomes[index] = _outcome(workflows[index], "skipped", str(run))
                        else:
                            outcomes[index] = judge(workflows[index], run, {})
            finally:
                batch.close()
    finally:
        verifier.cleanup_problems = verifier.env.cleanup()
    return [o for o in outcomes if o is not None]


def _has_chord(workflow: ReplayWorkflow) -> bool:
    """A chord, written as one or as ``group | task`` in a chain (Celery makes it one)."""
    for found in walk(workflow.canvas):
        if isinstance(found, ReplayChord):
            return True
        if isinstance(found, ReplayChain) and any(
                isinstance(s, ReplayGroup) and not s.unrolled for s in found.steps[:-1]):
            return True
    return False


def _outcome(workflow: WorkflowReplay, status: str, detail: str, **extra) -> Dict[str, Any]:
    return {"path": workflow.path, "scope": workflow.scope, "line": workflow.line,
            "status": status, "detail": detail, **extra}


def judge(workflow: WorkflowReplay, run, behaviours: Dict[str, Any]) -> Dict[str, Any]:
    text = run.built.text if run.built else None
    if run.raised is not None and workflow.workflow.application is None \
            and isinstance(run.raised, TypeError) and run.raised_at == "apply":
        return _outcome(workflow, "skipped", "not applied where it is built: its arguments may "
                        f"come later ({type(run.raised).__name__}: {run.raised})", canvas=text)
    if run.raised is not None:
        return _outcome(workflow, "failed",
                        f"raised {type(run.raised).__name__}: {run.raised}", canvas=text)
    injected = set(behaviours)
    failures = [f for f in run.exceptions() if not (f.get("task") in injected
                                                    and f["type"] == "InjectedFailure")]
    if failures:
        first = failures[0]
        return _outcome(workflow, "failed", f"{first['role']} {first['type']}: "
                        f"{first['message']}", canvas=text)
    states = run.observation.states if run.observation else {}
    pending = [n.role for n in run.built.nodes if states.get(n.id, {}).get("state") not in
               ("SUCCESS", "FAILURE")] if run.built else []
    if run.timed_out or (pending and not injected):
        return _outcome(workflow, "failed", f"did not finish: {pending}", canvas=text)
    return _outcome(workflow, "clean", f"{len(states)} node(s) in {run.elapsed:.2f}s",
                    canvas=text)
