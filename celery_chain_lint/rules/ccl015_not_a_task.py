"""CCL015 not-a-task: ``.s()``/``.delay()`` on a plain or ``async def`` function, or on a name
the module it is taken from does not have.

## What it does
Flags ``f.s(...)``, ``f.si(...)``, ``f.delay(...)``, ``f.apply_async(...)``,
``f.signature(...)``, ``f.map(...)``, ``f.starmap(...)`` and ``f.chunks(...)`` where ``f``
resolves (across modules, through imports and aliases) to a module-level function with no
decorator at all: a plain ``def`` or an ``async def`` that is not a task. Decorated functions
are never reported (a decorator the analyser does not know may well make a task), nor
functions given attributes by assignment (``f.delay = ...``).

It also flags ``tasks.missing_task.delay(...)`` where ``tasks`` is an analysed module that
binds no ``missing_task``: no definition, import or assignment of it (in that module or,
as ``tasks.missing_task = ...``, in another), no star import, no submodule of that name, and
nothing through which the module gets attributes at run time (a module ``__getattr__``,
``globals()``, ``setattr``, ``sys.modules``...); nor when the calling module checks or adds
attributes itself (``hasattr``, ``getattr``, ``setattr``). It is this rule's finding, not a
new code, because it is the same mistake with the same failure: the name used as a task is
not one (here it is nothing at all, typically a task renamed or removed while a caller kept
the old name), the call raises ``AttributeError``, and the fix is to use the task's current
name.

## Why is this bad?
Only a task object has ``s``, ``delay`` and ``apply_async``; a function has none of them. The
call raises ``AttributeError`` when the line runs, which for a rarely taken branch (an error
path, a nightly job) means in production. It happens when a task is converted back to a
function, its decorator is removed, or it is made ``async def`` (Celery does not run
coroutines as tasks). Observed on Python 3.11 with Celery 5.7.0:
``AttributeError: 'function' object has no attribute 's'`` (and ``'delay'``), the same for an
``async def``.

## Example
```python
def send_receipt(order_id):      # was @app.task
    ...

send_receipt.delay(order_id)     # AttributeError
tasks.send_reciept.delay(order_id)   # no such task in tasks.py: AttributeError
```

## How to fix
Make it a task again (``@app.task`` / ``@shared_task``), call it directly
(``send_receipt(order_id)``), or enqueue the task that replaced it.
"""
from __future__ import annotations

from typing import Iterator

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.roots import TASK_METHODS
from celery_chain_lint.index.symbols import ModuleSym
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.replay import (
    MissingAttribute,
    NotATaskFunction,
    Replay,
    ReplayParam,
)


_APP = """\
from celery import Celery
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def charge(order_id):
    return order_id

def send_receipt(order_id):
    return order_id

async def fetch_rate(currency):
    return 1.0
"""


class NotATask(Rule):
    code = "CCL015"
    name = "not-a-task"
    summary = (".s()/.delay() on a plain or async function that is not a task, or on a name "
               "its module does not have: AttributeError")
    reads_task_methods_on_functions = True

    VALID = [
        _APP + "import example\n\nexample.charge.delay(1)\n",
        _APP + "import example\n\nif hasattr(example, 'refund'):\n"
               "    example.refund.delay(1)\n",
        _APP + "charge.delay(1)\n",
        _APP + "send_receipt(1)\n",
        _APP + "def later():\n    return send_receipt.__name__\n",
    ]
    INVALID = [
        _APP + "import example\n\nexample.send_reciept.delay(1)  # expect: CCL015\n",
        _APP + "send_receipt.delay(1)  # expect: CCL015\n",
        _APP + "def later():\n    return fetch_rate.s(\"EUR\")  # expect: CCL015\n",
    ]

    def check(self, project) -> Iterator:
        seen = set()
        for facts in project.modules.values():
            if not project.reports_on(facts.path):
                continue
            calls = [node for root in facts.roots if not root.scope
                     for node in ir.walk(root.expr) if isinstance(node, ir.Call)]
            calls += [site.call for function in facts.functions.values()
                      if function.may_use_attribute(TASK_METHODS) and not function.left_unread
                      for site in function.calls]
            for call in calls:
                if not (isinstance(call, ir.Call) and isinstance(call.func, ir.Attribute)
                        and call.func.attr in TASK_METHODS and call.span is not None):
                    continue
                key = (facts.path, call.span)
                if key in seen:
                    continue
                seen.add(key)
                found = self._message(project, facts.module, call)
                if found is not None:
                    message, replay = found
                    yield self.finding(facts.path, call.span, message, replay=replay)

    @staticmethod
    def _message(project, module: str, call: ir.Call):
        symbol = project.resolver.resolve(call.func.value, module)
        function = project.resolver.plain_function(symbol)
        if function is None:
            return _missing(project, module, call)
        defining = project.modules[symbol.module]
        for target, _ in defining.attribute_assignments:
            if isinstance(target, ir.Attribute) and isinstance(target.value, ir.Name) \
                    and target.value.id == function.name:
                return None  # ``send_receipt.delay = ...``: given attributes by hand
        kind = "an async def function" if function.is_async else "a plain function"
        where = "" if symbol.module == module else f" (defined in {symbol.module})"
        method = call.func.attr
        # For the runtime harness: the function as defined (name, parameters, async or not)
        # and the attribute the call looks up.
        replay = Replay(function=NotATaskFunction(
            function.name, symbol.module, function.is_async,
            tuple(ReplayParam(p.name, p.kind, p.has_default) for p in function.params.items)),
            method=method)
        return (f"{function.name} is {kind}, not a Celery task{where}: "
                f"{function.name}.{method}(...) raises AttributeError: 'function' object has "
                f"no attribute {method!r}; decorate it with @app.task / @shared_task, call it "
                f"directly, or use the task that replaced it"), replay


def _missing(project, module: str, call: ir.Call):
    """``tasks.missing_task.delay()``: ``tasks`` an analysed module that binds no
    ``missing_task`` (no definition, import or assignment, no star import, not a submodule,
    nothing that adds attributes dynamically): the lookup raises AttributeError."""
    receiver = call.func.value
    if not isinstance(receiver, ir.Attribute):
        return None
    owner = project.resolver.resolve(receiver.value, module)
    if not isinstance(owner, ModuleSym):
        return None
    name = receiver.attr
    facts = project.modules.get(owner.name)
    if facts is None or not facts.path or facts.star_imports or name in facts.bindings \
            or f"{owner.name}.{name}" in project.modules or name.startswith("__"):
        return None
    for other in project.modules.values():  # ``tasks.missing_task = ...`` elsewhere
        for target, _ in other.attribute_assignments:
            if isinstance(target, ir.Attribute) and target.attr == name and \
                    project.resolver.resolve(target.value, other.module) == owner:
                return None
    if facts.may_add_attributes:
        return None  # attributes the module may get at run time
    if project.modules[module].may_check_attributes:
        return None  # the caller adds or checks attributes itself
    method = call.func.attr
    shown = ir.dotted_name(receiver) or f"{owner.name}.{name}"
    replay = Replay(missing=MissingAttribute(owner.name, name), method=method)
    return (f"{shown} does not exist: the module {owner.name} ({facts.path}) defines, imports "
            f"or assigns no {name!r}, so {shown}.{method}(...) raises AttributeError: module "
            f"{owner.name!r} has no attribute {name!r} when this line runs; was the task "
            f"renamed or removed? Use the task's current name"), replay
