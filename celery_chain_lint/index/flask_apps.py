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
a Flask app from elsewhere) gives nothing. The bodies are read in the facts, as written (``FunctionFacts.stores``: what a
module-level function stores on the names it returns and on its parameters, and the calls it
hands a name it returns to).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (POSITIONAL_OR_KEYWORD, FunctionFacts, Store, Stores,
                                          ValueBinding)
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
    function = _stores(resolver, factory)
    if function is None:
        return None
    returned = set(function.returns)
    if len(returned) != 1 or None in returned:
        return None  # every ``return`` gives the same local name
    flask_name = returned.pop()
    found: Dict[int, AppSym] = {}
    for store in function.stores:
        if store.owner != flask_name or store.key != key:
            continue
        app = _app_of(resolver, factory.module, factory, store)
        if app is None:
            return None  # something the analyser does not know is stored there too
        found[id(app.call)] = app
    for callee, position, name in function.passes:
        if name != flask_name:
            continue
        helper = resolver.resolve(ir.Name(text=callee, id=callee), factory.module)
        if not isinstance(helper, FunctionSym) or "." in helper.qualname:
            continue
        inner = _stores(resolver, helper)
        parameters = _positional(resolver, helper)
        if inner is None or position >= len(parameters):
            continue
        parameter = parameters[position]
        returned_by_helper = {name for name in inner.returns if name is not None}
        for store in inner.stores:
            if store.owner != parameter or store.key != key:
                continue
            if store.name is not None and returned_by_helper == {store.name}:
                # ``celery_init_app``: stores the app it makes and returns.
                app = resolver.app_factory(helper)
            else:
                app = _app_of(resolver, helper.module, helper, store)
            if app is None:
                return None
            found[id(app.call)] = app
    return next(iter(found.values())) if len(found) == 1 else None


def _app_of(resolver: "Resolver", module: str, function: FunctionSym,
            store: Store) -> Optional[AppSym]:
    """The app a stored value is: a call of a factory of apps, ``Celery(...)``, or a
    module-level app (a local assigned once from one of those counts as it)."""
    if store.value is None:
        return None
    is_call, dotted = store.value
    symbol = resolver.resolve(_ir_name(dotted), module)
    if is_call:
        if store.call is not None and (celery_name(symbol) == "Celery"
                                       or resolver.is_app_class(symbol)):
            return _made_here(resolver, module, function, store.call, symbol)
        # A factory of apps (``celery_init_app(app)``).
        return resolver.app_factory(symbol) if isinstance(symbol, FunctionSym) else None
    return symbol if isinstance(symbol, AppSym) else None


def _made_here(resolver: "Resolver", module: str, function: FunctionSym, call: ir.Call,
               cls: object) -> AppSym:
    """The app ``Celery(...)`` makes inside ``function`` (``app.extensions["celery"] =
    Celery(app.name)``, or a local so made in a helper that stores it and returns nothing),
    once per call: its keywords are seen (``task_cls=``), not their values. Whatever the
    function does with it next is not read (``app.extensions["celery"].conf.update(...)``
    would win over a keyword), so its configuration is unknown (``AppSym.loaded``)."""
    made = resolver.__dict__.setdefault("_made_in_functions", {})
    key = (module, call.span.line, call.span.column) if call.span is not None else id(call)
    if key not in made:
        arguments = tuple(ir.Arg(ir.Opaque(text=arg.value.text), keyword=arg.keyword,
                                 star=arg.star) for arg in call.args)
        made[key] = AppSym(module, ir.Call(call.func, arguments, text=call.text, span=call.span),
                           loaded=f"Celery(...) made in {function.qualname}()",
                           own_task_method=resolver.is_app_class(cls)
                           and resolver.defines_method(cls, "task"))
    return made[key]


def _function(resolver: "Resolver", function: FunctionSym) -> Optional[FunctionFacts]:
    """The facts of a module-level ``def`` (not ``async``)."""
    if "." in function.qualname:
        return None
    facts = resolver.modules.get(function.module)
    found = facts.functions.get(function.qualname) if facts is not None else None
    if found is None or found.is_async or found.is_method:
        return None
    return found


def _stores(resolver: "Resolver", function: FunctionSym) -> Optional[Stores]:
    found = _function(resolver, function)
    return found.stores if found is not None else None


def _positional(resolver: "Resolver", function: FunctionSym) -> List[str]:
    found = _function(resolver, function)
    return [] if found is None else [p.name for p in found.params.items
                                     if p.kind == POSITIONAL_OR_KEYWORD]


def _ir_name(dotted: tuple) -> ir.Expr:
    expr: ir.Expr = ir.Name(text=dotted[0], id=dotted[0])
    for attr in dotted[1:]:
        expr = ir.Attribute(text=f"{expr.text}.{attr}", value=expr, attr=attr)
    return expr
