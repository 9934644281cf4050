"""CCL004 large-result: a workflow task returns a whole file, response, data frame or ORM object.

## What it does
Flags a ``return`` statement of a task whose result a workflow passes on (a chain link followed
by a link that takes the result, a chord header member, a member of a group followed by a
step) when it returns a large or unserializable payload: a file's or response's whole content
(``fh.read()``, ``Path.read_bytes()``, ``resp.content``, ``resp.text``, ``json.load(fh)``, base64 of
those), a data frame or array (``pd.read_csv(...)``, ``np.load(...)``), an ORM queryset or model
instance (``Order.objects.filter(...)``, ``list(Order.objects.all())``,
``Order.objects.get(...)``), or compressed/pickled bytes. Values are followed through local
variables (``data = fh.read(); return data``, a value set in ``if`` branches: any path), the
responses of HTTP clients however they are reached (``resp = session.get(url)``, ``with
httpx.Client() as c: resp = c.get(url)``, then ``resp.content``, ``resp.json()``), lists built
with ``.append()`` (in a loop: ``rows.append(resp.content)``) and what a project helper
returns (``return download(url)``). Identifiers, counts, small literals and
``values_list("pk")`` are not reported, nor tasks no workflow depends on.

## Why is this bad?
A chain link's return value is stored in the result backend and sent again, serialized, as the
first argument of the next link's message; a chord collects every header result in the backend.
Observed on Celery 5.7.0 (JSON serializer, Redis backend): a link returning a 5 MB file's
``read()`` produced a 6,666,782-byte message for the next link and a 6,666,929-byte stored
result, where returning the path took 94 and 241 bytes. Brokers limit message sizes (SQS
256 KiB, RabbitMQ's ``max_message_size``), and every byte crosses the network twice. An object
the serializer cannot encode fails the task after its body has run: a link returning a model
instance ended FAILURE with ``kombu.exceptions.EncodeError: TypeError('Object of type Order
is not JSON serializable')`` and the rest of the chain never ran. A queryset or instance is also
stale by the time the next task reads it.

## Example
```python
@app.task
def extract(path):
    with open(path, "rb") as fh:
        data = fh.read()
    return data            # 5 MB through the broker and the result backend

chain(extract.s("/data/big.csv"), transform.s()).delay()
```

## How to fix
Store the payload where the next task can read it (object storage, a file, the database) and
return its identifier: a path, a key, a primary key.
```python
@app.task
def extract(path):
    key = storage.save(path)
    return key
```
The producers considered large are configurable: ``[tool.celery-chain-lint.large-result]``
``large-calls`` (dotted names, ``*`` wildcards; ``extend-large-calls`` adds to them, e.g.
``["mycorp.storage.load_blob"]``), ``large-methods``, ``response-attributes``.
"""
from __future__ import annotations

from typing import Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.index.origins import in_modules, matches, origin
from celery_chain_lint.rules.base import Rule
from celery_chain_lint.workflow.model import SignatureNode, task_display, where
from celery_chain_lint.workflow.replay import LargeReturn, Replay, task_replay, workflow_replay

# Calls returning a whole file, a data frame or array, an ORM object, or bytes: dotted names with
# shell wildcards, as the resolver sees them (``pd.read_csv`` is ``pandas.read_csv``).
LARGE_CALLS = {
    "content": ("json.load", "pickle.load", "marshal.load", "io.BytesIO", "io.StringIO",
                "open"),
    "data frame": ("pandas.read_*", "pandas.DataFrame", "pandas.concat", "pandas.json_normalize",
                   "pandas.io.*", "polars.read_*", "polars.DataFrame", "pyarrow.parquet.read_*",
                   "dask.dataframe.read_*", "openpyxl.load_workbook", "xlrd.open_workbook"),
    "array": ("numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile",
              "numpy.memmap", "PIL.Image.open", "cv2.imread", "imageio.imread",
              "imageio.v3.imread"),
    "model instance": ("django.shortcuts.get_object_or_404",),
    "bytes": ("zlib.compress", "zlib.decompress", "gzip.compress", "gzip.decompress",
              "bz2.compress", "bz2.decompress", "lzma.compress", "lzma.decompress",
              "pickle.dumps", "marshal.dumps"),
}
# Methods returning the whole content of whatever they are called on (without a size argument).
LARGE_METHODS = ("read", "readlines", "read_bytes", "read_text", "getvalue", "readall")
# Attributes holding a network response's body, on the result of a call into these modules.
RESPONSE_ATTRIBUTES = ("content", "text", "body", "data")
RESPONSE_MODULES = ("requests", "httpx", "urllib3", "urllib.request", "aiohttp", "http.client",
                    "boto3", "botocore")
# Methods of those responses giving their whole body, parsed (``resp.json()``).
RESPONSE_METHODS = ("json",)
# Django managers: ``X.objects.<method>(...)`` returning rows (querysets or instances).
ORM_MANAGERS = ("objects",)
ORM_QUERYSET_METHODS = ("all", "filter", "exclude", "order_by", "select_related",
                        "prefetch_related", "annotate", "distinct", "only", "defer", "raw",
                        "union", "intersection", "difference", "using", "iterator", "reverse")
ORM_INSTANCE_METHODS = ("get", "first", "last", "latest", "earliest", "create",
                        "get_or_create", "update_or_create", "in_bulk")
# Calls and methods that keep a large value large (``list(qs)``, ``base64.b64encode(data)``).
TRANSPARENT_CALLS = ("list", "tuple", "dict", "set", "bytes", "bytearray", "str", "sorted",
                     "json.dumps", "json.loads", "base64.*", "codecs.encode", "codecs.decode",
                     "copy.copy", "copy.deepcopy")
TRANSPARENT_METHODS = ("decode", "encode", "to_dict", "to_json", "to_records", "to_numpy",
                       "tolist", "copy", "strip", "splitlines", "split", "reset_index",
                       "fillna", "dropna", "sort_values", "merge", "astype")
TRANSPARENT_ATTRIBUTES = ("values", "T")

_APP = """\
import json
from celery import Celery, chain, chord, group
app = Celery("example", broker="memory://", backend="cache+memory://")

@app.task
def consume(data):
    return len(data)
"""


class LargeResult(Rule):
    code = "CCL004"
    name = "large-result"
    summary = ("a task used in a workflow returns a whole file, response, data frame or ORM "
               "object instead of an identifier")
    options = {
        "large-calls": sorted(name for names in LARGE_CALLS.values() for name in names),
        "extend-large-calls": [],
        "large-methods": list(LARGE_METHODS),
        "response-attributes": list(RESPONSE_ATTRIBUTES),
    }

    VALID = [
        _APP + '@app.task\ndef load(path):\n    with open(path) as fh:\n'
               '        return len(fh.read())\n\nchain(load.s("a"), consume.s()).delay()\n',
        _APP + '@app.task\ndef load(path):\n    with open(path) as fh:\n'
               '        return fh.read()\n\nload.delay("a")\n',
        _APP + '@app.task\ndef ids():\n    return Order.objects.values_list("pk", flat=True)[:100]\n'
               '\nchain(ids.s(), consume.s()).delay()\n',
        _APP + '@app.task\ndef load(path):\n    with open(path) as fh:\n'
               '        return fh.read()\n\nchain(load.s("a"), consume.si([])).delay()\n',
        _APP + '@app.task\ndef settings(d):\n    return d.get("key")\n'
               '\nchain(settings.s({}), consume.s()).delay()\n',
    ]
    INVALID = [
        _APP + '@app.task\ndef load(path):\n    with open(path, "rb") as fh:\n'
               '        data = fh.read()\n    return data  # expect: CCL004\n'
               '\nchain(load.s("a"), consume.s()).delay()\n',
        _APP + 'import pandas as pd\n\n@app.task\ndef frame(path):\n'
               '    return pd.read_csv(path)  # expect: CCL004\n'
               '\nchord([frame.s("a"), frame.s("b")], consume.si([])).delay()\n',
        _APP + '@app.task\ndef orders():\n    return list(Order.objects.filter(paid=True))  # expect: CCL004\n'
               '\n(group(orders.s(), orders.s()) | consume.s()).delay()\n',
        _APP + 'import requests\n\n'
               '@app.task(autoretry_for=(requests.RequestException,), max_retries=3)\n'
               'def page(url):\n'
               '    resp = requests.get(url, timeout=5)\n    return resp.content  # expect: CCL004\n'
               '\nchain(page.s("https://example.com"), consume.s()).delay()\n',
    ]

    def check(self, project):
        calls = {kind: tuple(n for n in names if n in self.option("large-calls"))
                 for kind, names in LARGE_CALLS.items()}
        extra = [n for n in self.option("large-calls") + self.option("extend-large-calls")
                 if not any(n in names for names in LARGE_CALLS.values())]
        calls["large value"] = tuple(extra)
        classifier = _Classifier(project.resolver, calls, tuple(self.option("large-methods")),
                                 tuple(self.option("response-attributes")))
        for task in project.all_tasks:
            function = task.function
            if function is None or not function.returns:
                continue
            uses = [use for use in project.uses_of(task) if use.passes_result]
            if not uses:
                continue
            for span, value in function.returns:
                found = classifier.large(value, task.module)
                if found is None or span is None:
                    continue
                yield self._finding(task, span, found, uses)

    def _finding(self, task, span, found, uses):
        kind, expr = found
        use = uses[0]
        path = where(use.workflow, use.signature)
        used = f"{path}:{use.signature.span.line}" if use.signature.span is not None else path
        if use.role == "header":
            how = "collected for a chord body"
        elif isinstance(use.then, SignatureNode):
            how = f"sent to {task_display(use.then)}"
        else:
            how = "sent to the next step"
        what = _DESCRIPTIONS.get(kind, "a large value")
        message = (f"{task.display} returns {what} ({expr.text or '...'}), and the workflow at "
                   f"{used} passes its result on ({how}): it is serialized into the result "
                   f"backend and the next message; store it and return an identifier "
                   f"(a path, a key, a primary key)")
        replay = Replay(task=task_replay(task), large_return=LargeReturn(kind, span.line),
                        workflows=tuple(workflow_replay(u.workflow) for u in uses[:3]))
        return self.finding(task.path, span, message, replay=replay)


_DESCRIPTIONS = {
    "content": "a file's or response's whole content",
    "data frame": "a data frame",
    "array": "an array or image",
    "queryset": "an ORM queryset",
    "model instance": "an ORM model instance",
    "bytes": "a bytes payload",
    "large value": "a large value",
}


class _Classifier:
    def __init__(self, resolver, calls, methods, response_attributes):
        self.resolver = resolver
        self.calls = calls
        self.methods = methods
        self.response_attributes = response_attributes

    def large(self, expr: Optional[ir.Expr], module: str,
              depth: int = 0) -> Optional[Tuple[str, ir.Expr]]:
        """(kind, the expression that makes it large), or None."""
        if expr is None or depth > 20:
            return None
        if isinstance(expr, ir.Call):
            return self._call(expr, module, depth)
        if isinstance(expr, ir.Attribute):
            if expr.attr in self.response_attributes and isinstance(expr.value, ir.Call):
                source = origin(self.resolver, expr.value, module)
                if in_modules(source, RESPONSE_MODULES):
                    return "content", expr
            if expr.attr in TRANSPARENT_ATTRIBUTES:
                return self.large(expr.value, module, depth + 1)
            return None
        if isinstance(expr, ir.Sequence):
            return self._first(expr.items, module, depth)
        if isinstance(expr, ir.Dict):
            return self._first(expr.values, module, depth)
        if isinstance(expr, ir.Starred):
            return self.large(expr.value, module, depth + 1)
        if isinstance(expr, ir.Comprehension):
            return self.large(expr.element, module, depth + 1)
        if isinstance(expr, ir.Alternatives):  # a value set in branches: any path returning it
            return self._first(expr.options, module, depth)
        return None

    def _first(self, items, module, depth):
        for item in items:
            found = self.large(item, module, depth + 1)
            if found is not None:
                return found
        return None

    def _call(self, call: ir.Call, module: str, depth: int):
        func = call.func
        orm = _orm_kind(call)
        if orm is not None:
            return orm, call
        if isinstance(func, ir.Attribute):
            if func.attr in self.methods and not call.args:
                return "content", call
            if func.attr in RESPONSE_METHODS and not call.args \
                    and isinstance(func.value, ir.Call) \
                    and in_modules(origin(self.resolver, func.value, module), RESPONSE_MODULES):
                return "content", call  # ``requests.get(url).json()``: the whole body
            if func.attr in TRANSPARENT_METHODS:
                found = self.large(func.value, module, depth + 1)
                if found is not None:
                    return found
        name = origin(self.resolver, func, module)
        for kind, patterns in self.calls.items():
            if matches(name, patterns):
                return kind, call
        if matches(name, TRANSPARENT_CALLS):
            return self._first(call.positional, module, depth)
        if name is None and not call.has_splat:
            return self._helper(call, module, depth)
        return None

    def _helper(self, call: ir.Call, module: str, depth: int):
        """``return download(url)``: what a project function (plain, module-level) returns."""
        symbol = self.resolver.resolve(call.func, module)
        function = self.resolver.plain_function(symbol)
        if function is None or function.is_async or not function.may_return_value():
            return None
        for _, value in function.returns:
            found = self.large(value, symbol.module, depth + 1)
            if found is not None:
                return found
        return None


def _orm_kind(call: ir.Call) -> Optional[str]:
    """"queryset" or "model instance" for ``X.objects.filter(...).first()`` and the like."""
    func = call.func
    if not isinstance(func, ir.Attribute):
        return None
    method = func.attr
    if method in ORM_INSTANCE_METHODS:
        kind = "model instance"
    elif method in ORM_QUERYSET_METHODS:
        kind = "queryset"
    else:
        return None
    inner = func.value
    while True:
        if isinstance(inner, ir.Attribute):
            if inner.attr in ORM_MANAGERS:
                return kind
            inner = inner.value
        elif isinstance(inner, ir.Call) and isinstance(inner.func, ir.Attribute) \
                and inner.func.attr in ORM_QUERYSET_METHODS:
            inner = inner.func.value
        else:
            return None
