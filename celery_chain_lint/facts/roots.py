"""What makes a statement a workflow root, and, read cheaply, which function bodies may hold one.

Two views of one rule, kept side by side because the second must over-approximate the first:

- ``looks_like_canvas(expr)``: the extractor keeps a statement's expression (after local names
  are substituted) as a ``Root`` when it calls a canvas method or name, or uses ``|``;
- ``body_reading(function)``: from ``ast`` alone, whether a function body may produce such a
  root, or holds something else the rules need from every function at once. Bodies it does not
  read ``NOW`` are elided before libcst parses the file (``celery_chain_lint/bodies.py``).

Why ``body_reading`` never misses a root: substitution only moves expressions within one body,
so every canvas method or name a root calls is spelled somewhere in that body (``d = t.delay``
then ``d()``), as an attribute, a plain name, or an imported name; ``|`` is spelled as ``|`` or
``|=``. Two root methods matter only on a given receiver (``app.conf.update``,
``os.environ.setdefault``, read by ``index/apps.py``), so they also need the receiver spelled.

A body whose only reason is a root of another kind than the calls rules read in every body
(``.set``, ``.replace``, ``|``...) is read ``IF_RELEVANT``: once the project is known, when it
spells a Celery-related name of its module (``prefilter.relevance``: a task, an app, one of
Celery's objects, a variable or function built from those, a module holding them). A root
reaches a canvas only through such a name: a parameter, ``self``, a literal or a name from
another library resolve to nothing the workflow builder can build, so ``Q(a) | Q(b)`` (Django),
``text.replace(...)`` or ``cache.set(...)`` are never parsed. A body importing names itself is
read now (its names are not the module's).
Importing nothing heavy: the pipeline's main process uses it before libcst is needed.
"""
from __future__ import annotations

import ast
from typing import FrozenSet, List, NamedTuple, Optional, Set, Tuple

from celery_chain_lint.facts import ir

# Method names that make a statement worth keeping as a root: canvas building and applying,
# and the app calls the index reads (task registration, configuration, and
# ``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`` for the Django settings module).
ROOT_METHODS = frozenset(
    {"s", "si", "signature", "subtask", "delay", "apply_async", "apply", "link", "link_error",
     "on_error", "set", "map", "starmap", "chunks", "replace", "add_to_chord",
     "register_task", "register", "config_from_object", "update", "setdefault"}
)
CANVAS_NAMES = frozenset({"chain", "group", "chord", "signature", "Signature", "subtask", "chunks"})
# Root methods read only on one receiver (index/apps.py): the method, and the last name of the
# receiver it needs (``app.conf.update(...)``, ``os.environ.setdefault(...)``).
RECEIVER_NEEDED = {"update": "conf", "setdefault": "environ"}
_ANY_RECEIVER = (ROOT_METHODS | CANVAS_NAMES) - frozenset(RECEIVER_NEEDED)

# Methods whose calls a rule reads in every function body (CCL015: a task method called on
# something that is not a task; CCL017: a task sent inside a transaction), and canvas names:
# a body spelling one is read now, since it would be read anyway.
READ_IN_EVERY_BODY = frozenset({"s", "si", "delay", "apply_async", "signature", "subtask", "map",
                                "starmap", "chunks"}) | CANVAS_NAMES

# What the libcst pass does with a function body: read it with the rest of the module, leave it
# until a rule asks, or leave it and read it for its roots if it spells a Celery-related name.
NOW, LATER, IF_RELEVANT = 1, 0, 2

# A function decorated with a name holding this word may be a task (``@app.task``,
# ``@shared_task``, ``@periodic_task``): its body is read at once, since most rules read a task's
# body and reading it later costs a second parse. Only time depends on this guess: a task under
# another decorator (a project's own ``@job``) has its body read when a rule asks for it.
TASK_WORD = "task"


def looks_like_canvas(expr: ir.Expr) -> bool:
    for node in ir.walk(expr):
        if isinstance(node, ir.BinOp):
            return True
        if isinstance(node, ir.Call):
            func = node.func
            if isinstance(func, ir.Attribute) and (
                    func.attr in CANVAS_NAMES
                    or func.attr in ROOT_METHODS and _receiver_matches(func)):
                return True
            if isinstance(func, ir.Name) and func.id in CANVAS_NAMES:
                return True
            if isinstance(func, ir.Imported) and (func.name or "") in CANVAS_NAMES:
                return True
    return False


def _receiver_matches(func: ir.Attribute) -> bool:
    needed = RECEIVER_NEEDED.get(func.attr)
    if needed is None:
        return True
    if isinstance(func.value, ir.Attribute) and func.value.attr == needed:
        return True
    return (ir.dotted_name(func.value) or "").split(".")[-1] == needed


class Body(NamedTuple):
    """What a function body spells and holds, from one walk of its ``ast``."""

    names: FrozenSet[str]  # plain and imported names
    attributes: FrozenSet[str]  # attribute names (``x.delay``: ``delay``)
    pipes: bool  # a ``|`` or ``|=``
    defines: bool  # a nested class, or a function decorated other than by ``wraps``
    imports: bool  # an import statement
    rebound: FrozenSet[str]  # names it assigns, deletes or imports
    conf_owners: Tuple[ast.expr, ...]  # ``x`` of each ``x.conf.name = ...``, ``x.conf[...] =``


def read_body(function: ast.AST) -> Body:
    names: Set[str] = set()
    attributes: Set[str] = set()
    rebound: Set[str] = set()
    conf_owners: List[ast.expr] = []
    pipes = defines = imports = False
    for statement in function.body:
        for node in ast.walk(statement):
            kind = type(node)
            if kind is ast.Name:
                names.add(node.id)
                if type(node.ctx) is not ast.Load:
                    rebound.add(node.id)
            elif kind is ast.Attribute or kind is ast.Subscript:
                if kind is ast.Attribute:
                    attributes.add(node.attr)
                if type(node.ctx) is ast.Store and type(node.value) is ast.Attribute \
                        and node.value.attr == "conf":
                    conf_owners.append(node.value.value)
            elif kind is ast.alias:
                names.add(node.name)
                rebound.add(node.name)
                if node.asname:
                    names.add(node.asname)
                    rebound.add(node.asname)
            elif kind is ast.BinOp or kind is ast.AugAssign:
                pipes = pipes or type(node.op) is ast.BitOr
            elif kind is ast.ClassDef:
                defines = True
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                defines = defines or any(_decorator_name(d) != "wraps"
                                         for d in node.decorator_list)
            elif kind is ast.Import or kind is ast.ImportFrom:
                imports = True
    return Body(frozenset(names), frozenset(attributes), pipes, defines, imports,
                frozenset(rebound), tuple(conf_owners))


def body_reading(function: ast.AST, body: Optional[Body] = None) -> int:
    """When the libcst pass reads ``function``'s body (``body``: ``read_body(function)``):
    ``NOW`` when it may hold a write to an app's settings (``x.conf.name = ...``,
    ``app.conf.update(...)``, ``os.environ.setdefault``), a nested class or decorated function
    (an elided body does not even list what it defines: a task defined in a factory), or the
    function may be a task, or it spells a method or name that rules read in every body
    anyway (``READ_IN_EVERY_BODY``); ``IF_RELEVANT`` when it may hold a root through another
    root method (``.set``, ``.replace``...) or a ``|`` (and nothing above); else ``LATER``."""
    if any(TASK_WORD in (_decorator_name(d) or "").lower() for d in function.decorator_list):
        return NOW
    body = body or read_body(function)
    names, attributes = body.names, body.attributes
    if any(method in attributes and (receiver in attributes or receiver in names)
           for method, receiver in RECEIVER_NEEDED.items()):
        return NOW  # read by the app index (index/apps.py), whatever its receiver resolves to
    if not attributes.isdisjoint(READ_IN_EVERY_BODY) or not names.isdisjoint(CANVAS_NAMES):
        return NOW
    if body.defines or any(not _on_a_parameter(owner, function, body.rebound)
                           for owner in body.conf_owners):
        return NOW  # ``app.conf.result_backend = ...``, ``app.conf["..."] = ...``
    if attributes.isdisjoint(_ANY_RECEIVER) and not body.pipes:  # ``.set``, ``.link``, ``|``...
        return LATER
    return NOW if body.imports else IF_RELEVANT


def _on_a_parameter(owner: ast.expr, function: ast.AST, rebound: FrozenSet[str]) -> bool:
    """Whether ``owner`` (of ``owner.conf.name = ...``) is reached from a parameter the body
    never rebinds (``self.app``): the extractor sees an opaque local there, never an app, and
    records nothing (``extract._writes_conf``). Test suites write ``self.app.conf`` a lot."""
    while isinstance(owner, (ast.Attribute, ast.Subscript, ast.Call)):
        owner = owner.func if isinstance(owner, ast.Call) else owner.value
    if not isinstance(owner, ast.Name):
        return False
    arguments = function.args
    parameters = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
    parameters |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    return owner.id in parameters and owner.id not in rebound


def _decorator_name(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None
