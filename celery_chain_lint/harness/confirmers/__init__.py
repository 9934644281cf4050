"""Per-rule confirmers: how a run on a real worker proves (or fails to prove) a finding.

A confirmer is a function ``(finding, context) -> Verdict`` registered for one or more rule
codes with ``@confirms("CCL001", ...)``; one module per rule family. ``finding`` is the JSON
form of a finding (``Finding.to_json()``: code, path, line, message, ``replay``...). The context
runs replays on the worker (``context.run``), says which backend is in use and which options
the user gave. A code with no confirmer is reported ``skipped``, with that reason.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

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


Confirmer = Callable[[Dict[str, Any], Any], Verdict]
REGISTRY: Dict[str, Confirmer] = {}
# What a confirmer needs from the session: "worker" (the default), "none" (no worker at all).
NEEDS: Dict[str, str] = {}


def confirms(*codes: str, needs: str = "worker"):
    def register(function: Confirmer) -> Confirmer:
        for code in codes:
            REGISTRY[code] = function
            NEEDS[code] = needs
        return function
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


def flagged_signature(node: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The signature the finding is about (``flagged: true`` in the replay tree)."""
    for found in walk(node):
        if found.get("type") in ("signature", "called") and found.get("flagged"):
            return found
    return None


def walk(node: Optional[Dict[str, Any]]):
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict):
            continue
        yield current
        kind = current.get("type")
        if kind == "chain":
            stack.extend(reversed(current.get("steps") or ()))
        elif kind == "group":
            stack.extend(reversed(current.get("members") or ()))
        elif kind == "chord":
            stack.extend([current.get("body"), current.get("header")])


def replay_signatures(replay: Dict[str, Any]):
    nodes = [replay.get("canvas")] + [c.get("callback") for c in replay.get("callbacks") or ()]
    for node in nodes:
        for found in walk(node):
            if found.get("type") == "signature":
                yield found


def first_task(node: Optional[Dict[str, Any]]) -> Optional[str]:
    """The task that runs first in a canvas (the first link, the first header member)."""
    for found in walk(node):
        if found.get("type") in ("signature", "called"):
            return found.get("task")
    return None


def function_name(replay: Dict[str, Any], task: Optional[str]) -> Optional[str]:
    from celery_chain_lint.harness.shadow import python_name

    spec = (replay.get("tasks") or {}).get(task or "") or {}
    return python_name(spec.get("display"), fallback=(task or "task").rsplit(".", 1)[-1])


def replay_tasks(replay: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Every task spec a finding's replay data mentions: its workflow's, the task it is about
    (``task``: CCL004/CCL005/...), and those of the workflows listed under ``workflows``."""
    found: Dict[str, Dict[str, Any]] = {}
    if not isinstance(replay, dict):
        return found
    for spec in (replay.get("tasks") or {}).values():
        if isinstance(spec, dict) and spec.get("name"):
            found.setdefault(spec["name"], spec)
    task = replay.get("task")
    if isinstance(task, dict) and task.get("name"):
        found.setdefault(task["name"], task)
    for workflow in replay.get("workflows") or ():
        found.update({k: v for k, v in replay_tasks(workflow).items() if k not in found})
    # A task called where a signature belongs (CCL007) has no spec in the workflow's tasks:
    # a lenient shadow (``*args, **kwargs``) lets the call happen as in the source.
    nodes = [replay.get("canvas")] + [c.get("callback") for c in replay.get("callbacks") or ()]
    for node in nodes:
        for item in walk(node):
            name = item.get("task") if item.get("type") == "called" else None
            if name and name not in found:
                found[name] = {"name": name, "display": name.rsplit(".", 1)[-1],
                               "params": None, "bind": False, "options": {}, "lenient": True}
    # CCL008: header tasks that ignore results (possibly through the app's task_ignore_result)
    # get shadows that do too; a batch of their own when that differs from other findings'.
    for name in replay.get("ignoring") or ():
        if name in found:
            spec = dict(found[name])
            spec["options"] = {**(spec.get("options") or {}), "ignore_result": True}
            found[name] = spec
    return found


def journal_runs(run, task: str) -> List[Dict[str, Any]]:
    """The executions of one task during a run, from the shadow journal, in start order."""
    return sorted((e for e in run.journal if e.get("task") == task),
                  key=lambda e: e.get("start", 0))


def workflow_replays(replay: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The workflows a finding's replay data holds: itself, or its ``workflows`` list."""
    if replay.get("canvas") is not None:
        return [replay]
    return [w for w in replay.get("workflows") or () if isinstance(w, dict)]
