"""CCL012 swallowed-retry: ``self.retry()`` inside a broad ``except`` that does not re-raise.

## What it does
Flags a call to ``self.retry(...)`` (or ``some_task.retry(...)``) in a task whose enclosing
``try`` catches ``Exception``, ``BaseException``, everything (bare ``except:``) or Celery's
``Retry`` and does not re-raise, and one inside ``with contextlib.suppress(Exception):``.
A clause that re-raises (``except Exception: log(); raise``) lets it through.

## Why is this bad?
``Task.retry()`` publishes the retry message and then raises ``celery.exceptions.Retry`` so
that the worker stops the current run and records the state RETRY. ``Retry`` is an
``Exception``: a broad handler around the call catches it, the task body goes on and returns
normally, the worker records SUCCESS, and the retry message already sent runs the task again.
Observed on Celery 5.7.0: a task that called ``self.retry(exc=exc)`` inside
``try: ... except Exception: pass`` ran twice and both runs ended SUCCESS; a task that always
retried ran ``max_retries + 1`` times, each run SUCCESS, and the final
``MaxRetriesExceededError`` was swallowed the same way, so the failure was never recorded.
Side effects before the retry (a charge, an email) happen twice.

## Example
```python
@app.task(bind=True, max_retries=3)
def charge(self, order_id):
    try:
        gateway.charge(order_id)
    except GatewayTimeout as exc:
        try:
            self.retry(exc=exc)
        except Exception:
            logger.warning("could not retry")
```

## How to fix
Let ``Retry`` propagate: ``raise self.retry(exc=exc)`` outside the broad handler, or re-raise
it before the broad clause:
```python
    except Retry:
        raise
    except Exception:
        logger.warning("could not retry")
```
"""
from __future__ import annotations

from typing import Callable, FrozenSet, Iterator, NamedTuple, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.index.symbols import ClassSym, External, TaskSym
from celery_chain_lint.index.tasks import literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.replay import Replay, SwallowingHandler, task_replay

# Exception classes an ``except`` clause can name that catch ``celery.exceptions.Retry``.
CATCHES_RETRY = frozenset({
    "builtins.Exception", "builtins.BaseException",
    "celery.exceptions.Retry", "celery.exceptions.TaskPredicate",
    "celery.exceptions.CeleryError", "celery.Retry",
})
SUPPRESS = frozenset({"contextlib.suppress"})

_APP = """\
from celery import Celery
from celery.exceptions import Retry
app = Celery("example", broker="memory://", backend="cache+memory://")

def send(order_id):
    raise ConnectionError(order_id)
"""


class SwallowedRetry(Rule):
    code = "CCL012"
    name = "swallowed-retry"
    summary = ("self.retry() inside a broad except that does not re-raise: the task returns "
               "SUCCESS and runs again")

    VALID = [
        _APP + """
@app.task(bind=True)
def notify(self, order_id):
    try:
        send(order_id)
    except ConnectionError as exc:
        raise self.retry(exc=exc)
""",
        _APP + """
@app.task(bind=True)
def notify(self, order_id):
    try:
        self.retry(countdown=5)
    except Retry:
        raise
    except Exception:
        pass
""",
        _APP + """
@app.task(bind=True)
def notify(self, order_id):
    try:
        self.retry(countdown=5)
    except ValueError:
        pass
""",
    ]
    INVALID = [
        _APP + """
@app.task(bind=True)
def notify(self, order_id):
    try:
        send(order_id)
        self.retry(countdown=5)  # expect: CCL012
    except Exception:
        return "gave up"
""",
        _APP + """
@app.task(bind=True)
def notify(self, order_id):
    try:
        self.retry()  # expect: CCL012
    except:
        pass
""",
    ]

    def check(self, project) -> Iterator:
        for swallowed in swallowed_task_calls(project, "retry", CATCHES_RETRY, _raises):
            task, call = swallowed.task, swallowed.call
            message = (f"{call.text or 'retry()'} raises celery.exceptions.Retry, an "
                       f"Exception: {swallowed.handler} catches it and does not re-raise, so "
                       f"{task.display} returns normally (SUCCESS) and the retry message "
                       "already sent runs it again; re-raise Retry (`except Retry: raise`) "
                       "or call it outside the handler")
            # For the runtime harness: the task (its shadow swallows its own Retry) and what
            # the handler catches; a retry of another task is not replayed.
            yield self.finding(task.path, call.span, message,
                               replay=swallowed.replay("retry"))


def _raises(call: ir.Call) -> bool:
    return literal(call.keyword("throw"), True) is not False  # ``retry(throw=False)`` does not


class SwallowedCall(NamedTuple):
    """A call in a task's body whose exception a handler around it swallows."""

    task: object  # index.tasks.Task
    call: ir.Call
    handler: str  # the handler, as the message names it
    catches: str  # the class it catches
    itself: bool  # called on the task itself (not on another task)

    def replay(self, method: str) -> Replay:
        return Replay(task=task_replay(self.task), handler=SwallowingHandler(
            self.handler, self.catches, self.itself, method))


def swallowed_task_calls(project, method: str, catching: FrozenSet[str],
                         accepts: Callable[[ir.Call], bool]) -> Iterator[SwallowedCall]:
    """Every ``<task>.<method>(...)`` (``self.retry``, ``self.replace``) in the body of a task
    reported on, that ``accepts``, whose exception the innermost handler around it catching
    one of ``catching`` swallows (CCL012, CCL023)."""
    for task in project.all_tasks:
        function = task.function
        if function is None or not project.reports_on(task.path):
            continue
        receiver = task.self_name
        for site in function.calls:
            call = site.call
            if not (isinstance(call, ir.Call) and isinstance(call.func, ir.Attribute)
                    and call.func.attr == method and call.span is not None and accepts(call)
                    and _on_a_task(project, task, call.func.value, receiver)):
                continue
            found = swallowed_by(project, task.module, site, catching)
            if found is None:
                continue
            called = project.resolver.resolve(call.func.value, task.module)
            itself = not isinstance(called, TaskSym) or called.task.name == task.name
            yield SwallowedCall(task, call, found[0], found[1], itself)


def _on_a_task(project, task, owner: ir.Expr, receiver: Optional[str]) -> bool:
    """``owner`` is the bound task's receiver (``self``) or resolves to a task."""
    if isinstance(owner, ir.Opaque) and owner.kind == "local":
        return receiver is not None and owner.text == receiver
    return isinstance(project.resolver.resolve(owner, task.module), TaskSym)


def catches(project, module: str, types: Tuple[ir.Expr, ...],
            catching: FrozenSet[str] = CATCHES_RETRY) -> Optional[bool]:
    """Whether a clause catches the exception (``catching``: the qualified names of the
    classes that catch it): True, False, or None when it cannot be told."""
    if not types:
        return True  # bare ``except:``
    unknown = False
    for expr in types:
        symbol = project.resolver.resolve(expr, module)
        if isinstance(symbol, External):
            if symbol.qualname in catching:
                return True
            continue  # ValueError, requests.RequestException... do not catch Retry
        if isinstance(symbol, ClassSym):
            continue  # a project exception class
        unknown = True
    return None if unknown else False


def caught(project, module: str, types: Tuple[ir.Expr, ...],
           catching: FrozenSet[str] = CATCHES_RETRY) -> str:
    """The broadest class named that catches it (``builtins.BaseException`` for a bare
    ``except:``), for the harness's shadow to catch the same."""
    names = []
    for expr in types:
        symbol = project.resolver.resolve(expr, module)
        if isinstance(symbol, External) and symbol.qualname in catching:
            names.append(symbol.qualname)
    for broad in ("builtins.BaseException", "builtins.Exception",
                  "celery.exceptions.CeleryError", "celery.exceptions.TaskPredicate"):
        if broad in names:
            return broad
    return names[0] if names else "builtins.BaseException"


def swallowed_by(project, module: str, site,
                 catching: FrozenSet[str] = CATCHES_RETRY) -> Optional[Tuple[str, str]]:
    """(the handler that swallows the exception raised at ``site``, the class it catches) when
    the innermost handler catching it does not re-raise; None otherwise or when unknown."""
    for item in site.with_items:
        if isinstance(item, ir.Call):
            symbol = project.resolver.resolve(item.func, module)
            if isinstance(symbol, External) and symbol.qualname in SUPPRESS \
                    and catches(project, module, item.positional, catching):
                return (f"`with {item.text}` (line {item.span.line})",
                        caught(project, module, item.positional, catching))
    for clauses in reversed(site.handlers):  # innermost ``try`` first
        for types, reraises in clauses:
            catching_here = catches(project, module, types, catching)
            if catching_here is None:
                return None
            if not catching_here:
                continue
            if reraises:
                break  # propagates to the enclosing ``try``
            names = ", ".join(t.text for t in types)
            where = ("a bare `except:`" if not types else f"`except {names}:`"
                     if len(types) == 1 else f"`except ({names}):`")
            line = f" (line {types[0].span.line})" if types and types[0].span else ""
            return where + line, caught(project, module, types, catching)
    return None
