"""Every workflow of a project as replay data, and replaying them without a finding.

``verify`` replays findings; this replays *workflows*, flagged or not. The test suite uses it to
run every negative fixture and check that it runs clean on a real worker (the harness's shadows
must not invent failures), and it works for any project: a workflow that fails here although no
rule flags it is a false negative of the analyser or of the harness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from celery_chain_lint.harness.confirmers import replay_tasks
from celery_chain_lint.harness.confirmers.arguments import failure_behaviours
from celery_chain_lint.harness.replayer import Unreplayable


@dataclass
class WorkflowReplay:
    path: str
    scope: str  # qualname of the enclosing function ("" at module level)
    line: Optional[int]
    replay: Dict[str, Any]


def project_workflows(paths: Sequence[str]) -> List[WorkflowReplay]:
    """Every workflow the analyser models under ``paths`` (no rule involved)."""
    from celery_chain_lint.workflow.replay import workflow_data

    project = _project(list(paths))
    found = []
    for workflow in project.workflows:
        span = getattr(workflow.canvas, "span", None)
        found.append(WorkflowReplay(workflow.module.path, workflow.scope,
                                    span.line if span is not None else None,
                                    workflow_data(workflow)))
    return found


def _project(paths: List[str]):
    """The analysed project, as ``engine.check`` builds it (with its cache), or file by file."""
    try:
        from celery_chain_lint.discovery import discover
        from celery_chain_lint.pipeline import Analysis, project_sources
        from celery_chain_lint.settings import Settings

        settings = Settings()
        options = dict(excludes=set(settings.exclude) | set(settings.extend_exclude),
                       source_roots=settings.src, path_filter=settings.path_filter())
        sources = discover(paths, force_exclude=settings.force_exclude, **options)
        analysis = Analysis(settings)
        analysis.prepare(sources, project_sources(paths, sources, options))
        project, _problems = analysis.analyse()
        return project
    except (ImportError, TypeError, AttributeError):  # the pipeline changed: the plain way
        from celery_chain_lint.discovery import discover
        from celery_chain_lint.engine import analyse_file
        from celery_chain_lint.project import Project

        modules = []
        for source in discover(paths):
            facts, _problem = analyse_file(source)
            if facts is not None:
                modules.append(facts)
        return Project(modules)


def replay_clean(workflows: List[WorkflowReplay], options=None) -> List[Dict[str, Any]]:
    """Run each workflow once as written: ``clean`` (no failure, every node succeeded),
    ``failed`` (with what failed) or ``skipped`` (cannot be replayed, with why)."""
    from celery_chain_lint.harness.verify import Options, Verifier, plan_batches

    verifier = Verifier(options or Options())
    verifier.env.preflight()
    pseudo = [{"replay": w.replay} for w in workflows]
    outcomes: List[Optional[Dict[str, Any]]] = [None] * len(workflows)
    try:
        for batch in plan_batches(pseudo):
            try:
                for index in batch.members:
                    outcomes[index] = _one(workflows[index], batch, verifier)
            finally:
                batch.close()
    finally:
        verifier.cleanup_problems = verifier.env.cleanup()
    return [o for o in outcomes if o is not None]


def _one(workflow: WorkflowReplay, batch, verifier) -> Dict[str, Any]:
    outcome = {"path": workflow.path, "scope": workflow.scope, "line": workflow.line}
    if (workflow.replay.get("canvas") or {}).get("type") == "called":
        return dict(outcome, status="skipped", detail="not a canvas: a task called directly")
    behaviours = failure_behaviours(workflow.replay)
    try:
        run = batch.session_for(verifier).run(workflow.replay, behaviours,
                                              timeout=verifier.options.timeout)
    except Unreplayable as error:
        return dict(outcome, status="skipped", detail=str(error))
    outcome["workflow"] = run.built.text if run.built else None
    if run.raised is not None and workflow.replay.get("application") is None \
            and isinstance(run.raised, TypeError) and run.raised_at == "apply":
        return dict(outcome, status="skipped",
                    detail="not applied where it is built: its arguments may come later "
                           f"({type(run.raised).__name__}: {run.raised})")
    if run.raised is not None:
        return dict(outcome, status="failed",
                    detail=f"raised {type(run.raised).__name__}: {run.raised}")
    injected = set(behaviours)
    failures = [f for f in run.exceptions() if not (f.get("task") in injected
                                                    and f["type"] == "InjectedFailure")]
    if failures:
        first = failures[0]
        return dict(outcome, status="failed",
                    detail=f"{first['role']} {first['type']}: {first['message']}")
    states = run.observation.states if run.observation else {}
    pending = [n.role for n in run.built.nodes if states.get(n.id, {}).get("state") not in
               ("SUCCESS", "FAILURE")] if run.built else []
    if run.timed_out or (pending and not injected):
        return dict(outcome, status="failed", detail=f"did not finish: {pending}")
    return dict(outcome, status="clean", detail=f"{len(states)} node(s) in {run.elapsed:.2f}s")
