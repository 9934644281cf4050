"""Execution options (``apply_async``'s keywords) passed where task arguments go (rule CCL013).

``task.delay(*args, **kwargs)``, ``task.s(...)`` and ``task.si(...)`` hand every keyword to the
task; only ``apply_async(args, kwargs, **options)`` and ``.set(**options)`` take options.
"""
from __future__ import annotations

from typing import List, Sequence

from celery_chain_lint.workflow.binding import bind
from celery_chain_lint.facts.model import (
    KEYWORD_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
)

# Keywords of ``Task.apply_async`` / ``Signature.set`` (Celery 5.7).
EXECUTION_OPTIONS = frozenset({
    "countdown", "eta", "expires", "retry", "retry_policy", "queue", "exchange", "routing_key",
    "priority", "serializer", "compression", "link", "link_error", "shadow", "headers",
    "ignore_result", "time_limit", "soft_time_limit", "task_id", "add_to_parent", "producer",
    "connection", "publisher", "reply_to", "group_id", "root_id", "parent_id", "chord",
    "delivery_mode", "mandatory", "immediate", "stamped_headers",
})
# The options no task would plausibly take through ``**kwargs`` for itself.
UNAMBIGUOUS_OPTIONS = frozenset({
    "countdown", "eta", "expires", "retry_policy", "routing_key", "link", "link_error",
    "soft_time_limit", "time_limit", "task_id", "ignore_result", "add_to_parent",
})
# How a task is given arguments directly.
ARGUMENT_METHODS = ("delay", "s", "si")


def accepts_any_keyword(task) -> bool:
    return task.params is not None and any(p.kind == VAR_KEYWORD for p in task.params.items)


def misplaced_options(task, keywords: Sequence[str], mentioned: Sequence[str] = ()) -> List[str]:
    """The keywords that are execution options the task does not declare as parameters.

    With ``**kwargs`` only the unambiguous options count, and not those the body reads by name
    (``mentioned``: string constants in the task's calls, such as ``kwargs.get("countdown")``).
    """
    if task is None or task.params is None:
        return []
    declared = {p.name for p in task.params.items
                if p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
    options = UNAMBIGUOUS_OPTIONS if accepts_any_keyword(task) else EXECUTION_OPTIONS
    return [k for k in keywords if k in options and k not in declared and k not in mentioned]


def explained_by_options(invocation) -> bool:
    """Whether an invocation's binding error is only options passed as task keywords.

    CCL002 leaves those to CCL013, which says what was meant and offers the fix.
    """
    signature = invocation.signature
    task = signature.task
    if signature.via not in ARGUMENT_METHODS or task is None or task.params is None:
        return False
    keywords = [k for k, _ in invocation.keywords()]
    misplaced = misplaced_options(task, keywords)
    if not misplaced or invocation.prepended is None:
        return False
    rest = [k for k in keywords if k not in misplaced]
    return bind(task.params, len(invocation.positional()), rest, invocation.complete) is None


def mentioned_strings(task) -> List[str]:
    """String constants passed to calls in the task's body (``kwargs.pop("eta", None)``)."""
    from celery_chain_lint.facts import ir

    function = getattr(task, "function", None)
    found: List[str] = []
    for site in getattr(function, "calls", ()) or ():
        call = site.call
        if isinstance(call, ir.Call):
            for arg in call.args:
                if isinstance(arg.value, ir.Const) and isinstance(arg.value.value, str):
                    found.append(arg.value.value)
    return found
