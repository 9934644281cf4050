"""The Celery app a Flask application factory stores on the Flask app it returns.

Flask's patterns make the Celery app inside ``create_app()`` and keep it on the Flask app:
``app.extensions["celery"] = celery_init_app(app)`` (or ``celery_init_app`` storing it there
itself, Flask's documentation), ``app.celery = make_celery(app)``. A module then takes it back
at import time to declare its tasks: ``flask_app = create_app()``, ``celery_app =
flask_app.extensions["celery"]`` (or ``flask_app.celery``), ``@celery_app.task``.

``stored_app`` follows exactly that: a module-level variable holding ``F()``, ``F`` a function
of the analysed code that returns one local name, and a store on that name, in ``F``'s own
body or in the function ``G(name)`` it calls (``G``'s parameter), of a value that is an app
the resolver knows (what a factory of apps returns, such as ``G`` itself, or a module-level
app, or ``Celery(...)`` written there, whose configuration is then unknown). Anything else (a
store in a branch the analyser cannot tell apart, several different apps stored under the key,
a Flask app from elsewhere) gives nothing. The bodies are read with ``ast`` from the source, as
``index/flask.py`` and ``index/factories.py`` do.
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import ValueBinding
from celery_chain_lint.index.factories import module_tree
from celery_chain_lint.index.symbols import AppSym, FunctionSym, celery_name

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver

Key = Tuple[str, str]  # ("attribute", "celery") or ("extension", "celery")


def stored_app(resolver: "Resolver", module: str, expr: ir.Expr) -> Optional[AppSym]:
    """The app ``expr`` (``flask_app.celery``, ``flask_app.extensions["celery"]``) is, when
    ``flask_app`` holds what a factory of the analysed code returns and that factory stores
    one known app there; None otherwise."""
    found = owner_and_key(expr)
    if found is None:
        return None
    owner, key = found
    facts = resolver.modules.get(module)
    binding = facts.bindings.get(owner) if facts is not None else None
    if not (isinstance(binding, ValueBinding) and isinstance(binding.expr, ir.Call)):
        return None
    factory = resolver.resolve(binding.expr.func, module)
    if not isinstance(factory, FunctionSym) or "." in factory.qualname:
        return None
    return resolver.app_stored_by(factory, key)


def owner_and_key(expr: ir.Expr) -> Optional[Tuple[str, Key]]:
    if isinstance(expr, ir.Attribute) and isinstance(expr.value, ir.Name):
        return expr.value.id, ("attribute", expr.attr)
    if isinstance(expr, ir.Opaque) and expr.kind == "Subscript" and len(expr.parts) == 2:
        container, index = expr.parts
        if isinstance(container, ir.Attribute) and container.attr == "extensions" \
                and isinstance(container.value, ir.Name) and isinstance(index, ir.Const) \
                and isinstance(index.value, str):
            return container.value.id, ("extension", index.value)
    return None


def app_stored_by(resolver: "Resolver", factory: FunctionSym, key: Key) -> Optional[AppSym]:
    """The one app ``factory`` stores under ``key`` on the Flask app it returns."""
    function = _function(resolver, factory)
    if function is None:
        return None
    returns = [node.value for node in _own_nodes(function) if isinstance(node, ast.Return)]
    returned = {value.id if isinstance(value, ast.Name) else None for value in returns}
    if len(returned) != 1 or None in returned:
        return None  # every ``return`` gives the same local name
    flask_name = returned.pop()
    found: Dict[int, AppSym] = {}
    for value in _stored_values(function, flask_name, key):
        app = _app_of(resolver, factory.module, function, value)
        if app is None:
            return None  # something the analyser does not know is stored there too
        found[id(app.call)] = app
    for callee, parameter in _calls_given(function, flask_name):
        helper = resolver.resolve(ir.Name(text=callee, id=callee), factory.module)
        if not isinstance(helper, FunctionSym) or "." in helper.qualname:
            continue
        inner = _function(resolver, helper)
        if inner is None or parameter >= len(inner.args.args):
            continue
        name = inner.args.args[parameter].arg
        returned_by_helper = {node.value.id for node in _own_nodes(inner)
                              if isinstance(node, ast.Return) and isinstance(node.value, ast.Name)}
        for value in _stored_values(inner, name, key):
            if isinstance(value, ast.Name) and returned_by_helper == {value.id}:
                # ``celery_init_app``: stores the app it makes and returns.
                app = resolver.app_factory(helper)
            else:
                app = _app_of(resolver, helper.module, inner, value)
            if app is None:
                return None
            found[id(app.call)] = app
    return next(iter(found.values())) if len(found) == 1 else None


def _app_of(resolver: "Resolver", module: str, function: ast.AST,
            value: ast.expr) -> Optional[AppSym]:
    """The app a stored value is: a call of a factory of apps, ``Celery(...)``, a module-level
    app, or a local assigned once from one of those."""
    if isinstance(value, ast.Name):
        assigned = [node.value for node in _own_nodes(function) if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == value.id for t in node.targets)]
        if len(assigned) == 1:
            value = assigned[0]
        elif assigned or value.id in _parameters(function):
            return None
    if isinstance(value, ast.Call):
        callee = _dotted(value.func)
        if callee is None:
            return None
        symbol = resolver.resolve(_ir_name(callee), module)
        if celery_name(symbol) == "Celery" or resolver.is_app_class(symbol):
            return _made_here(resolver, module, function, value, symbol)
        # A factory of apps (``celery_init_app(app)``).
        return resolver.app_factory(symbol) if isinstance(symbol, FunctionSym) else None
    dotted = _dotted(value)
    if dotted is None:
        return None
    symbol = resolver.resolve(_ir_name(dotted), module)
    return symbol if isinstance(symbol, AppSym) else None


def _made_here(resolver: "Resolver", module: str, function: ast.AST, call: ast.Call,
               cls: object) -> AppSym:
    """The app ``Celery(...)`` makes inside ``function`` (``app.extensions["celery"] =
    Celery(app.name)``, or a local so made in a helper that stores it and returns nothing).
    The facts do not keep that call (no workflow root): the app's is rebuilt from the source,
    once per call, with its keywords (``task_cls=`` is seen) but not their values. Whatever
    the function does with it next is not read, so its configuration is unknown
    (``AppSym.loaded``)."""
    made = resolver.__dict__.setdefault("_made_in_functions", {})
    key = (module, call.lineno, call.col_offset)
    if key not in made:
        arguments = tuple(ir.Arg(_ir_value(a.value), star="*" if isinstance(a, ast.Starred)
                                 else "") for a in call.args)
        arguments += tuple(ir.Arg(_ir_value(k.value), keyword=k.arg, star="" if k.arg else "**")
                           for k in call.keywords)
        text = ast.unparse(call)
        ir_call = ir.Call(_ir_name(_dotted(call.func)), arguments, text=text, span=ir.Span(
            call.lineno, call.col_offset + 1, call.end_lineno or call.lineno,
            (call.end_col_offset or call.col_offset) + 1))
        made[key] = AppSym(module, ir_call, loaded=f"Celery(...) made in {function.name}()",
                           own_task_method=resolver.is_app_class(cls)
                           and resolver.defines_method(cls, "task"))
    return made[key]


def _ir_value(node: ast.expr) -> ir.Expr:
    """Every argument unknown, literals too: what the function writes on the app after
    making it (``app.extensions["celery"].conf.update(...)``) is not read, and would win over
    a keyword (``backend="rpc://"``)."""
    if isinstance(node, ast.Starred):
        node = node.value
    return ir.Opaque(text=ast.unparse(node))


def _stored_values(function: ast.AST, name: str, key: Key) -> Iterator[ast.expr]:
    for node in _own_nodes(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if key[0] == "attribute" and isinstance(target, ast.Attribute) \
                    and target.attr == key[1] and isinstance(target.value, ast.Name) \
                    and target.value.id == name:
                yield node.value
            elif key[0] == "extension" and isinstance(target, ast.Subscript) \
                    and isinstance(target.value, ast.Attribute) \
                    and target.value.attr == "extensions" \
                    and isinstance(target.value.value, ast.Name) \
                    and target.value.value.id == name \
                    and isinstance(target.slice, ast.Constant) and target.slice.value == key[1]:
                yield node.value


def _calls_given(function: ast.AST, name: str) -> Iterator[Tuple[str, int]]:
    """(the function called, the position) of each plain call passing ``name`` positionally."""
    for node in _own_nodes(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for index, argument in enumerate(node.args):
                if isinstance(argument, ast.Name) and argument.id == name:
                    yield node.func.id, index


def _function(resolver: "Resolver", function: FunctionSym) -> Optional[ast.AST]:
    tree = module_tree(resolver, function.module)
    if tree is None:
        return None
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef)
             and node.name == function.qualname]
    return found[-1] if found else None


def _own_nodes(function: ast.AST) -> List[ast.AST]:
    """The nodes of a function's body, not those of the functions and classes it defines."""
    nodes: List[ast.AST] = []
    stack = list(function.body)
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                      ast.Lambda)):
                stack.append(child)
    return nodes


def _parameters(function: ast.AST) -> set:
    arguments = function.args
    return {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}


def _dotted(expr: ast.expr) -> Optional[tuple]:
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return tuple(reversed(parts))


def _ir_name(dotted: tuple) -> ir.Expr:
    expr: ir.Expr = ir.Name(text=dotted[0], id=dotted[0])
    for attr in dotted[1:]:
        expr = ir.Attribute(text=f"{expr.text}.{attr}", value=expr, attr=attr)
    return expr
