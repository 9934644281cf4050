"""Binds every invocation's arguments against its task's parameters (rules CCL001, CCL002)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from celery_chain_lint.workflow.binding import BindError, bind, render_call
from celery_chain_lint.workflow.model import Invocation


@dataclass(frozen=True)
class ArgumentProblem:
    invocation: Invocation
    error: BindError
    # The same call without the previous step's result: None when that would bind (``.si``).
    error_without_result: Optional[BindError]

    @property
    def si_was_meant(self) -> bool:
        return self.invocation.from_parent and self.error_without_result is None

    def rendered_call(self) -> str:
        inv = self.invocation
        return render_call(inv.signature.task.display, [v.text for v in inv.positional()],
                           [(k, v.text) for k, v in inv.keywords()])

    def rendered_params(self) -> str:
        task = self.invocation.signature.task
        return task.display + task.params.render()


def _check(invocation: Invocation) -> Optional[BindError]:
    params = invocation.signature.task.params
    return bind(params, len(invocation.positional()), [k for k, _ in invocation.keywords()],
                invocation.complete)


def argument_problems(invocations: List[Invocation]) -> List[ArgumentProblem]:
    problems = []
    for invocation in invocations:
        if not invocation.known() or invocation.signature.task.params is None:
            continue  # a splat, an unknown task or an unknown signature: say nothing
        error = _check(invocation)
        if error is None:
            continue
        without = _check(invocation.without_parent_result()) if invocation.from_parent else error
        problems.append(ArgumentProblem(invocation, error, without))
    return problems
