"""The analysed project: all modules' facts, the resolver, the task index and the workflows.

Rules receive a ``Project``; everything they ask for is computed once and shared.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, Iterator, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import ModuleFacts, Root
from celery_chain_lint.index.apps import AppIndex, app_index
from celery_chain_lint.index.resolver import Resolver
from celery_chain_lint.index.tasks import Task, TaskIndex
from celery_chain_lint.workflow.arguments import ArgumentProblem, argument_problems
from celery_chain_lint.workflow.builder import WorkflowBuilder
from celery_chain_lint.workflow.mapped import MappedProblem, mapped_problems
from celery_chain_lint.workflow.model import Invocation, Workflow, invocations
from celery_chain_lint.workflow.usage import TaskUse, uses_by_task

if TYPE_CHECKING:
    from celery_chain_lint.load.prefilter import Relevance


def by_module(modules: Iterable[ModuleFacts]) -> Dict[str, ModuleFacts]:
    """Each module's facts by its name; for ``pkg/`` and ``pkg.py`` side by side, the
    package's (Python imports the package)."""
    found: Dict[str, ModuleFacts] = {}
    for facts in modules:
        known = found.get(facts.module)
        if known is None or (facts.is_package and not known.is_package):
            found[facts.module] = facts
    return found


class Project:
    def __init__(self, modules: Iterable[ModuleFacts], reported_paths: Optional[set] = None,
                 lazy=None, relevance: Optional["Relevance"] = None):
        self.modules: Dict[str, ModuleFacts] = by_module(modules)
        if lazy is not None:
            # The pre-filter's modules read on demand (prefilter.ModuleTable): iterating
            # ``modules`` yields the fully analysed ones, lookups find every module.
            self.modules = lazy(self.modules)
        # The pre-filter's Celery-related names (prefilter.relevance), when it ran: a root
        # naming none of its module's builds no workflow, and is not followed.
        self.relevance = relevance
        self._reaching: Dict[str, Optional[FrozenSet[str]]] = {}
        self.resolver = Resolver(self.modules)
        self.tasks = TaskIndex(self.resolver, may_reach=self.may_reach)
        self.builder = WorkflowBuilder(self.resolver, self.tasks)
        # Findings are reported only for these paths (all when None); the rest is context.
        self.reported_paths = reported_paths

    def reports_on(self, path: str) -> bool:
        return self.reported_paths is None or path in self.reported_paths

    @cached_property
    def all_tasks(self) -> List[Task]:
        return self.tasks.all()

    @cached_property
    def workflows(self) -> List[Workflow]:
        found = []
        for facts in self.modules.values():
            if not self.reports_on(facts.path):
                continue
            for root in facts.roots:
                if self.may_build(facts, root):
                    found.extend(self.builder.workflows(facts, root))
        return found

    def root_calls(self) -> Iterator[Tuple[ModuleFacts, Root, ir.Call]]:
        """Every call inside the roots of the files reported on, once (a call may lie in two
        roots), skipping the roots that name nothing Celery-related (``may_build``)."""
        seen = set()
        for facts in self.modules.values():
            if not self.reports_on(facts.path):
                continue
            for root in facts.roots:
                if not self.may_build(facts, root):
                    continue
                for node in ir.walk(root.expr):
                    if isinstance(node, ir.Call) and node.span is not None \
                            and (facts.path, node.span) not in seen:
                        seen.add((facts.path, node.span))
                        yield facts, root, node

    def may_build(self, facts: ModuleFacts, root: Root) -> bool:
        """False only when ``root`` names nothing through which it could reach a Celery
        object (a root reaches a canvas only through such a name: facts/roots.py)."""
        return self.may_reach(facts.module, root.expr)

    def may_reach(self, module: str, expr: ir.Expr) -> bool:
        """False only when ``expr``, in ``module``, names nothing Celery-related: it cannot
        resolve to a task, an app, a canvas or a task decorator."""
        if self.relevance is None:
            return True
        if module not in self._reaching:
            facts = self.modules.get(module)
            self._reaching[module] = None if facts is None or facts.star_imports \
                else self.relevance.names_in(facts)
        names = self._reaching[module]
        return names is None or any(
            isinstance(node, ir.Imported) or isinstance(node, ir.Name) and node.id in names
            for node in ir.walk(expr))

    @cached_property
    def invocations(self) -> List[Invocation]:
        return [inv for workflow in self.workflows for inv in invocations(workflow)]

    @cached_property
    def argument_problems(self) -> List["ArgumentProblem"]:
        return argument_problems(self.invocations)

    @cached_property
    def mapped_problems(self) -> List[MappedProblem]:
        """``task.map(items)``, ``task.starmap(items)``, ``task.chunks(items, n)`` (and
        ``xmap``/``xstarmap``/``chunks`` of a signature) whose literal items do not bind."""
        return list(mapped_problems(self))

    @cached_property
    def apps(self) -> AppIndex:
        """Every Celery app and what the code configures on it (backend, serializer...)."""
        return app_index(self.resolver)

    @cached_property
    def task_uses(self) -> Dict[int, List[TaskUse]]:
        """id(task) -> where it runs inside workflows, of every analysed file."""
        workflows = list(self.workflows)
        if self.reported_paths is not None:  # a task may be used from a file not reported on
            for facts in self.modules.values():
                if not self.reports_on(facts.path):
                    for root in facts.roots:
                        if self.may_build(facts, root):
                            workflows.extend(self.builder.workflows(facts, root))
        return uses_by_task(workflows)

    def uses_of(self, task: Task) -> List[TaskUse]:
        """The signatures of ``task`` in workflows (``.passes_result``, ``.followed``)."""
        return self.task_uses.get(id(task), [])
