"""Per-rule confirmers: how a run on a real worker proves (or fails to prove) a finding.

A confirmer is a function ``(claim, context) -> Verdict`` registered for one or more rule codes
with ``@confirms("CCL001", ...)``; one module per rule. ``claim`` is the finding as the harness
reads it (``Claim``: code, path, line, message and its typed ``replay`` data,
``workflow/replay.py``, converted once from the finding's JSON). The context runs replays on the
worker (``context.run``), says which backend is in use and which options the user gave. A code
with no confirmer is reported ``skipped``, with that reason.

What every confirmer would otherwise check first is checked here once: a finding without replay
data is skipped before its confirmer runs, and a confirmer raises ``CannotConfirm`` (through
``required`` or ``named_task``) when the data lacks what it needs, to be skipped with the reason.
So is what every confirmer would check once its runs are over: ``context.evidence(run, ...)``
raises ``WorkerDied`` when the worker died during the run (or one of the ``runs`` it names), and
the finding is skipped, saying so, with that evidence (a run the worker did not finish proves
nothing).
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, TypeVar

from celery_chain_lint.workflow.replay import (
    Replay,
    ReplayCalled,
    ReplayNode,
    ReplaySignature,
    ReplayTask,
    ReplayWorkflow,
    walk,
)

CONFIRMED, NOT_REPRODUCED, SKIPPED = "confirmed", "not-reproduced", "skipped"

# One module per rule family; each registers its codes on import.
MODULES = ("arguments", "independent", "payload", "retry", "wait", "called", "chords",
           "errbacks", "group_callback", "single_member_group", "swallowed_retry", "options",
           "never_applied", "not_a_task", "returns_canvas", "transaction", "serialization",
           "canvas_options", "dropped_arguments", "revoke", "consecutive_groups", "replace",
           "serial_map", "chain_options", "visibility", "chord_unlock")


@dataclass
class Verdict:
    status: str
    reason: str
    evidence: Dict[str, Any] = field(default_factory=dict)


def confirmed(reason: str, **evidence) -> Verdict:
    return Verdict(CONFIRMED, reason, evidence)


def not_reproduced(reason: str, **evidence) -> Verdict:
    return Verdict(NOT_REPRODUCED, reason, evidence)


def skipped(reason: str, **evidence) -> Verdict:
    return Verdict(SKIPPED, reason, evidence)


@dataclass(frozen=True)
class Claim:
    """A finding as verify reads it: what ``check`` claims, and the replay data to show it."""

    code: str
    path: str = ""
    line: Optional[int] = None
    message: str = ""
    replay: Optional[Replay] = None

    @classmethod
    def from_json(cls, finding: Dict[str, Any]) -> "Claim":
        """The one place a finding's JSON (``Finding.to_json()``) enters the harness."""
        replay = finding.get("replay")
        return cls(finding.get("code", ""), finding.get("path", ""), finding.get("line"),
                   finding.get("message") or "",
                   Replay.from_json(replay) if isinstance(replay, dict) else None)


class CannotConfirm(Exception):
    """The replay data lacks what the confirmer needs: the finding is skipped, saying why."""


class WorkerDied(Exception):
    """The worker died during a run the confirmer judges by: skipped, with the evidence."""

    def __init__(self, reason: str, evidence: Dict[str, Any]):
        super().__init__(reason)
        self.reason = reason
        self.evidence = evidence


def worker_alive(evidence: Dict[str, Any], runs: Dict[str, Any]) -> Dict[str, Any]:
    """``evidence``, or ``WorkerDied`` when the worker died during one of ``runs`` (by label,
    "" for the one run: "during the run", "chain": "during the chain run"), in order."""
    for label, run in runs.items():
        if run.worker_died:
            during = f"the {label} run" if label else "the run"
            raise WorkerDied(f"the worker {run.worker_died} during {during}", evidence)
    return evidence


NO_REPLAY_DATA = "the finding carries no replay data"
T = TypeVar("T")


def required(value: Optional[T], why: str) -> T:
    """``value``, or the finding is skipped with ``why`` when it is missing (None, empty)."""
    if not value:
        raise CannotConfirm(why)
    return value


def named_task(replay: Replay, why: str = "the replay data does not name the task"
               ) -> ReplayTask:
    """The task a task-level finding is about (CCL004, CCL005, CCL006, CCL012...), with a
    registered name a shadow can take."""
    task = required(replay.task, why)
    required(task.name, why)
    return task


Confirmer = Callable[[Claim, Any], Verdict]
REGISTRY: Dict[str, Confirmer] = {}
# What a confirmer needs from the session: "worker" (the default), "none" (no worker at all).
NEEDS: Dict[str, str] = {}


def confirms(*codes: str, needs: str = "worker", needs_replay: bool = True):
    """Register a confirmer for ``codes``. It is called only with replay data (unless
    ``needs_replay`` is false), and a ``CannotConfirm`` or ``WorkerDied`` it raises becomes
    ``skipped``."""
    def register(function: Confirmer) -> Confirmer:
        @functools.wraps(function)
        def confirmer(claim: Claim, context) -> Verdict:
            if needs_replay and claim.replay is None:
                return skipped(NO_REPLAY_DATA)
            try:
                return function(claim, context)
            except CannotConfirm as why:
                return skipped(str(why))
            except WorkerDied as died:
                return skipped(died.reason, **died.evidence)

        for code in codes:
            REGISTRY[code] = confirmer
            NEEDS[code] = needs
        return confirmer
    return register


_loaded = False


def load() -> Dict[str, Confirmer]:
    global _loaded
    if not _loaded:
        for module in MODULES:
            try:
                importlib.import_module(f"{__name__}.{module}")
            except ModuleNotFoundError as error:
                if error.name != f"{__name__}.{module}":
                    raise
        _loaded = True
    return REGISTRY


def confirmer_for(code: str) -> Optional[Confirmer]:
    return load().get(code)


def codes() -> List[str]:
    return sorted(load())


# ---- helpers shared by the confirmers ----


def flagged_signature(node: Optional[ReplayNode]) -> Optional[ReplaySignature]:
    """The signature the finding is about (``flagged`` in the replay tree)."""
    return next((found for found in walk(node)
                 if isinstance(found, ReplaySignature) and found.flagged), None)


def flagged_in(workflow: ReplayWorkflow) -> Optional[ReplaySignature]:
    """The flagged signature of the canvas, else of a callback."""
    return next((found for root in workflow.roots()
                 for found in [flagged_signature(root)] if found is not None), None)


def first_task(node: Optional[ReplayNode]) -> Optional[str]:
    """The task that runs first in a canvas (the first link, the first header member)."""
    for found in walk(node):
        if isinstance(found, (ReplaySignature, ReplayCalled)):
            return found.task
    return None


def short(name: Optional[str], unknown: str = "?") -> str:
    """A registered name as the reader knows the task: ``shop.tasks.add`` -> ``add``."""
    return (name or unknown).rsplit(".", 1)[-1]


def function_name(replay: Replay, task: Optional[str]) -> Optional[str]:
    from celery_chain_lint.harness.shadow import python_name

    spec = (replay.tasks or {}).get(task or "")
    return python_name(spec.display if spec else None,
                       fallback=(task or "task").rsplit(".", 1)[-1])


def replay_tasks(replay: Optional[Replay]) -> Dict[str, ReplayTask]:
    """Every task spec a finding's replay data mentions: its workflow's, the task it is about
    (``task``: CCL004/CCL005/...), and those of the workflows listed under ``workflows``."""
    from dataclasses import replace

    found: Dict[str, ReplayTask] = {}
    if replay is None:
        return found
    for spec in (replay.tasks or {}).values():
        if spec.name:
            found.setdefault(spec.name, spec)
    if replay.task is not None and replay.task.name:
        found.setdefault(replay.task.name, replay.task)
    for workflow in replay.workflows or ():
        found.update({k: v for k, v in replay_tasks(workflow).items() if k not in found})
    # A task called where a signature belongs (CCL007) has no spec in the workflow's tasks:
    # a lenient shadow (``*args, **kwargs``) lets the call happen as in the source.
    for node in replay.workflow.nodes() if replay.workflow is not None else ():
        name = node.task if isinstance(node, ReplayCalled) else None
        if name and name not in found:
            found[name] = ReplayTask(name, short(name), lenient=True)
    # CCL008: header tasks that ignore results (possibly through the app's task_ignore_result)
    # get shadows that do too; a batch of their own when that differs from other findings'.
    for name in replay.ignoring or ():
        if name in found:
            found[name] = replace(found[name], options={**found[name].options,
                                                        "ignore_result": True})
    return found


def journal_runs(run, task: str) -> List[Dict[str, Any]]:
    """The executions of one task during a run, from the shadow journal, in start order."""
    return sorted((e for e in run.journal if e.get("task") == task),
                  key=lambda e: e.get("start", 0))


def alone(task: str, flagged: bool = False) -> ReplayWorkflow:
    """One immutable signature of ``task`` with no arguments, applied with ``apply_async()``:
    with ``repair``, the replay gives it a placeholder for every required parameter."""
    return ReplayWorkflow(ReplaySignature(task, immutable=True, via="si", flagged=flagged))
