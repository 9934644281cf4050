"""CCL018 json-unserializable: a task is given or returns a value the JSON serializer rejects.

## What it does
When the task's app serializes with JSON (Celery's default; ``task_serializer`` /
``result_serializer`` and the task's ``serializer=`` option are read from the code), flags:

- an argument of ``.delay()``, ``.apply_async((...), {...})``, or of ``.s()`` or ``.si()`` in a
  workflow that is applied (or returned to the caller, which applies it), that is a
  set (``{a, b}``, a set comprehension, ``set(...)``, ``frozenset(...)``), a model instance
  (``Model.objects.get(...)``, ``.create(...)``, ``.first()``, ``.last()``,
  ``get_object_or_404(...)``), or a request object (a ``request`` parameter of the calling
  function, or its ``request.user``);
- a ``return`` of a set from a task whose result is serialized: the app has a result backend
  and the task does not ignore results, or a workflow passes the result to another task.

A signature only built (``sig = notify.s({1, 2})`` then ``assert sig.args == ...``, as unit
tests do) is never encoded: nothing is said until it is sent. A setting read from the
environment, or a pickle/yaml/msgpack serializer, says nothing.
``datetime``, ``date``, ``time``, ``Decimal``, ``UUID`` and ``bytes`` are not reported: kombu
>= 5.3 round-trips them. Returning model instances is CCL004's finding.

## Why is this bad?
kombu's JSON encoder raises ``kombu.exceptions.EncodeError`` for anything it does not know.
Observed on Celery 5.7.0 / kombu 5.7.0: ``show.delay({1, 2})`` raised ``EncodeError: Object of
type set is not JSON serializable`` in the caller (``frozenset`` and a model-like object the
same); a task returning a set ended FAILURE with ``EncodeError(TypeError('Object of type set is
not JSON serializable'))`` although its body succeeded, and in a chain the next link never
ran. With ``ignore_result=True`` alone the same task ended without error; in a chain the next
link was never published nor run, and nothing recorded a failure.

## Example
```python
notify_users.delay({user.pk for user in users})     # EncodeError
send_welcome.delay(request.user)                    # EncodeError
```

## How to fix
Pass identifiers and plain JSON values, and load objects in the task:
```python
notify_users.delay(sorted(user.pk for user in users))
send_welcome.delay(request.user.pk)
```
"""
from __future__ import annotations

from typing import Iterator, Optional

from celery_chain_lint.facts import ir
from celery_chain_lint.index.apps import LITERAL, UNKNOWN
from celery_chain_lint.index.symbols import External, TaskSym
from celery_chain_lint.index.tasks import MISSING, literal
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.replay import Replay, ReturnedSet, task_replay, workflow_replay

PASSED = "a workflow sends its result to the next task"
ARGUMENT_METHODS = frozenset({"delay", "s", "si"})
SET_BUILTINS = frozenset({"builtins.set", "builtins.frozenset"})
INSTANCE_METHODS = frozenset({"get", "create", "first", "last", "latest", "earliest"})
GET_OBJECT = frozenset({"django.shortcuts.get_object_or_404"})

_APP = """\
from celery import Celery
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def notify(user_ids):
    return len(user_ids)
"""


class JsonUnserializable(Rule):
    code = "CCL018"
    name = "json-unserializable"
    summary = ("a set, a model instance or a request object passed to or returned by a task "
               "with the JSON serializer: EncodeError")

    VALID = [
        _APP + "notify.delay([1, 2])\n",
        _APP + "def view(request):\n    return notify.delay(request.user.pk)\n",
        _APP + "@app.task\ndef tags():\n    return sorted({'a', 'b'})\n",
        _APP + "def test_signature():\n    sig = notify.s({1, 2})\n"
               "    assert sig.args == ({1, 2},)\n",
    ]
    INVALID = [
        _APP + "notify.delay({1, 2})  # expect: CCL018\n",
        _APP + "def view(request):\n    return notify.delay(request.user)  # expect: CCL018\n",
        _APP + "@app.task\ndef tags():\n    return {'a', 'b'}  # expect: CCL018\n",
        _APP + "def send():\n    sig = notify.s({1, 2})  # expect: CCL018\n    sig.delay()\n",
    ]

    def check(self, project) -> Iterator:
        yield from self._arguments(project)
        yield from self._returns(project)

    # ---- arguments ----

    def _arguments(self, project) -> Iterator:
        seen = set()
        for workflow in project.workflows:
            if workflow.expr is None:
                continue
            module = workflow.module.module
            function = workflow.module.functions.get(workflow.scope) if workflow.scope else None
            params = {p.name for p in function.params.items} if function is not None else set()
            # A signature's arguments are encoded when it is sent: the workflow is applied
            # here, or handed to the caller (returned), which applies it.
            sent = workflow.applied or workflow.root_kind == "return"
            for node in ir.walk(workflow.expr):
                if not (isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute)):
                    continue
                method = node.func.attr
                if method not in ARGUMENT_METHODS and method != "apply_async":
                    continue
                symbol = project.resolver.resolve(node.func.value, module)
                if not isinstance(symbol, TaskSym):
                    continue
                task = symbol.task
                if method in ("s", "si") and not sent:
                    continue  # a signature only built (and inspected by a test): no message
                if not self._json(project, task, "task_serializer"):
                    continue
                for value in _argument_values(node, method):
                    what = self._unserializable(project, module, value, params)
                    if what is None or value.span is None or node.span is None:
                        continue
                    # A value kept in a variable is reported where it is passed.
                    span = value.span if _inside(value.span, node.span) else node.span
                    key = (workflow.module.path, span)
                    if key in seen:
                        continue
                    seen.add(key)
                    message = (f"{value.text} is {what}: the JSON serializer cannot encode it, "
                               f"so {task.display}.{method}() raises kombu.exceptions."
                               f"EncodeError when the message is sent; pass "
                               f"{_instead(what)}")
                    yield self.finding(workflow.module.path, span, message,
                                       replay=workflow_replay(workflow))

    def _unserializable(self, project, module: str, value: ir.Expr, params) -> Optional[str]:
        if _is_set(project, module, value):
            return "a set"
        if isinstance(value, ir.Opaque) and value.kind == "local" and value.text == "request" \
                and "request" in params:
            return "the request object"
        if isinstance(value, ir.Attribute) and value.attr == "user" \
                and isinstance(value.value, ir.Opaque) and value.value.kind == "local" \
                and value.value.text == "request" and "request" in params:
            return "a model instance (the request's user)"
        if _is_model_instance(project, module, value):
            return "a model instance"
        return None

    # ---- returns ----

    def _returns(self, project) -> Iterator:
        for task in project.all_tasks:
            function = task.function
            if function is None or not project.reports_on(task.path):
                continue
            for span, value in function.returns:
                if value is None or span is None or not _is_set(project, task.module, value):
                    continue
                why = self._result_serialized(project, task)
                if why is None:
                    continue
                message = (f"{task.display} returns a set, which the JSON serializer cannot "
                           f"encode: {why}; return a list (sorted(...))")
                passed = [use for use in project.uses_of(task) if use.passes_result] \
                    if why.startswith(PASSED) else []
                # For the runtime harness: the task (its shadow returns a set) and, when the
                # result is sent on, the workflows that send it (the task flagged in each).
                replay = Replay(task=task_replay(task),
                                returned_set=ReturnedSet(span.line, bool(passed)),
                                workflows=tuple(workflow_replay(u.workflow, u.signature)
                                                for u in passed[:3]))
                yield self.finding(task.path, span, message, replay=replay)

    def _result_serialized(self, project, task) -> Optional[str]:
        passed = [use for use in project.uses_of(task) if use.passes_result]
        if passed and self._json(project, task, "task_serializer"):
            return (f"{PASSED}, which the worker then "
                    "cannot publish (EncodeError): the rest of the workflow never runs")
        if task.literal_option("ignore_result", False) is not False:
            return None
        app = project.apps.app_of_task(task)
        if app is None:
            return None
        config = project.apps.config(app)
        if config.backend_kind() not in ("configured", "rpc"):
            return None
        ignore = config.ignore_result
        if ignore.state == UNKNOWN or (ignore.state == LITERAL and ignore.value is not False):
            return None
        if not self._json(project, task, "result_serializer"):
            return None
        return ("the result backend stores its result, so the task ends FAILURE with "
                "EncodeError although its body succeeded")

    # ---- serializer ----

    @staticmethod
    def _json(project, task, setting: str) -> bool:
        """Whether the task's messages (or results) are JSON, as far as the code says."""
        if setting == "task_serializer" and "serializer" in task.options:
            return literal(task.options["serializer"], MISSING) == "json"
        if task.open_options:
            return False
        app = project.apps.app_of_task(task)
        if app is None:
            return not project.apps.apps()  # no app in view: Celery's default, JSON
        config = project.apps.config(app)
        value = config.serializer if setting == "task_serializer" else config.result_serializer
        return value.state != UNKNOWN and value.value == "json"


def _argument_values(call: ir.Call, method: str):
    if call.has_splat:
        return
    if method != "apply_async":
        for arg in call.args:
            yield arg.value
        return
    positional = call.positional
    args = positional[0] if positional else call.keyword("args")
    kwargs = positional[1] if len(positional) > 1 else call.keyword("kwargs")
    if isinstance(args, ir.Sequence) and args.kind in ("tuple", "list"):
        yield from args.items
    if isinstance(kwargs, ir.Dict):
        yield from kwargs.values


def _is_set(project, module: str, value: ir.Expr) -> bool:
    if isinstance(value, ir.Sequence) and value.kind == "set":
        return True
    if isinstance(value, ir.Comprehension) and value.kind == "set":
        return True
    if isinstance(value, ir.Call):
        symbol = project.resolver.resolve(value.func, module)
        return isinstance(symbol, External) and symbol.qualname in SET_BUILTINS
    return False


def _is_model_instance(project, module: str, value: ir.Expr) -> bool:
    if not isinstance(value, ir.Call):
        return False
    func = value.func
    if isinstance(func, ir.Attribute) and func.attr in INSTANCE_METHODS:
        receiver = func.value
        while isinstance(receiver, (ir.Call, ir.Attribute)):
            if isinstance(receiver, ir.Attribute) and receiver.attr == "objects":
                return True
            receiver = receiver.func if isinstance(receiver, ir.Call) else receiver.value
        return False
    symbol = project.resolver.resolve(func, module)
    return isinstance(symbol, External) and symbol.qualname in GET_OBJECT


def _instead(what: str) -> str:
    if what == "a set":
        return "a list (sorted(...)) instead"
    if what == "the request object":
        return "the values the task needs (ids, strings) instead"
    return "its primary key (.pk) and load it in the task"


def _inside(inner: ir.Span, outer: ir.Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) \
        and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)
