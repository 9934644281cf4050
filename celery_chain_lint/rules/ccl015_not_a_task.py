"""CCL015 not-a-task: ``.s()``/``.delay()`` on a plain or ``async def`` function.

## What it does
Flags ``f.s(...)``, ``f.si(...)``, ``f.delay(...)``, ``f.apply_async(...)``,
``f.signature(...)``, ``f.map(...)``, ``f.starmap(...)`` and ``f.chunks(...)`` where ``f``
resolves (across modules, through imports and aliases) to a module-level function with no
decorator at all: a plain ``def`` or an ``async def`` that is not a task. Decorated functions
are never reported (a decorator the analyser does not know may well make a task), nor
functions given attributes by assignment (``f.delay = ...``).

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
```

## How to fix
Make it a task again (``@app.task`` / ``@shared_task``), call it directly
(``send_receipt(order_id)``), or enqueue the task that replaced it.
"""
from __future__ import annotations

from typing import Iterator

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.roots import TASK_METHODS
from celery_chain_lint.rules.base import Rule


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
    summary = ".s()/.delay() on a plain or async function that is not a task: AttributeError"
    reads_task_methods_on_functions = True

    VALID = [
        _APP + "charge.delay(1)\n",
        _APP + "send_receipt(1)\n",
        _APP + "def later():\n    return send_receipt.__name__\n",
    ]
    INVALID = [
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
            return None
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
        replay = {"function": {"name": function.name, "module": symbol.module,
                               "is_async": function.is_async,
                               "params": [{"name": p.name, "kind": p.kind,
                                           "has_default": p.has_default}
                                          for p in function.params.items]},
                  "method": method}
        return (f"{function.name} is {kind}, not a Celery task{where}: "
                f"{function.name}.{method}(...) raises AttributeError: 'function' object has "
                f"no attribute {method!r}; decorate it with @app.task / @shared_task, call it "
                f"directly, or use the task that replaced it"), replay
