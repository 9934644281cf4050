"""The Celery app a function receives as a parameter, from the calls that pass it.

``def register(app): @app.task def add(x, y): ...`` makes its tasks on whatever it is given.
Celery names such a task after its module and function (``proj.tasks.add``: observed on
Celery 5.7.0, the enclosing function plays no part), and the task exists once the function is
called with an app. The analyser follows the parameter to the calls of the function in the
analysed code (``register(celery_app)``, at module level or in a function, and through another
such function: ``def register_all(app): register(app)``): when they pass one Celery app, and
no other app, that app is the parameter's. A function called with nothing the analyser knows,
or never called in the analysed code, gives nothing: its parameter may be another library's
object with a ``task`` method (Huey, Dramatiq...), so its functions are not taken for tasks.

Calls are the facts' calls of the modules that can call the function (its own, and those
importing it or its module): those made at module level (``ModuleFacts.calls``) and those of
each function (``FunctionFacts.calls``, read only for a body that may spell the function's
name). An argument is a name or attribute of the module, or a parameter of the module-level
function making the call (followed to that function's calls); any other local of the calling
function (its value is substituted where it is used: ``app = Celery("local")``) is not
followed. A call inside a lambda, a class body, a default value, or a function defined in a
body the analysis left unread, is not seen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterator, Optional, Set, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import (
    KEYWORD_ONLY,
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    FromImportBinding,
    ImportBinding,
)
from celery_chain_lint.index.symbols import AppSym, FunctionSym

if TYPE_CHECKING:
    from celery_chain_lint.index.resolver import Resolver

# Beyond this many modules that may call a factory, its calls are not looked for.
MAX_CALLER_MODULES = 200


def factory_parameter(qualname: str, decorator: ir.Expr) -> Optional[Tuple[str, str]]:
    """(the enclosing module-level function, the parameter name) when ``decorator``, on the
    nested function ``qualname``, is ``P.task`` or ``P.task(...)`` with ``P`` a local of the
    enclosing function; None otherwise."""
    if ".<locals>." not in qualname:
        return None
    enclosing = qualname.split(".<locals>.", 1)[0]
    if "." in enclosing:
        return None  # a method, or deeper nesting: not followed
    func = decorator.func if isinstance(decorator, ir.Call) else decorator
    if not (isinstance(func, ir.Attribute) and func.attr == "task"
            and isinstance(func.value, ir.Opaque) and func.value.kind == "local"):
        return None
    return enclosing, func.value.text


def app_of_parameter(resolver: "Resolver", function: FunctionSym,
                     parameter: str) -> Optional[AppSym]:
    """The one Celery app the calls of ``function`` in the analysed code pass as
    ``parameter``; None when they pass none, several, or the function is not called."""
    facts = resolver.modules.get(function.module)
    defined = facts.functions.get(function.qualname) if facts is not None else None
    if defined is None or defined.is_method:
        return None
    params = defined.params.items
    names = [p.name for p in params]
    if parameter not in names:
        return None  # a local assigned in the body, not a parameter
    param = params[names.index(parameter)]
    if param.kind not in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY):
        return None
    position = names.index(parameter) if param.kind != KEYWORD_ONLY else None
    found: Dict[int, AppSym] = {}
    for caller, scope, argument in _arguments(resolver, function, position,
                                              None if param.kind == POSITIONAL_ONLY
                                              else parameter):
        symbol = _resolve_argument(resolver, caller, scope, argument)
        if isinstance(symbol, AppSym):
            found[id(symbol.call)] = symbol
    return next(iter(found.values())) if len(found) == 1 else None


def _resolve_argument(resolver: "Resolver", module: str, scope: str,
                      argument: ir.Expr) -> object:
    """What the argument is, in the function ``scope`` of ``module`` ("" at module level)."""
    if isinstance(argument, ir.Opaque) and argument.kind == "local":
        facts = resolver.modules.get(module)
        function = facts.functions.get(scope) if facts is not None and scope \
            and "." not in scope else None
        if function is not None and argument.text in {p.name for p in function.params.items}:
            # ``def register_all(app): register(app)``: the calls of that one.
            return resolver.app_of_parameter(FunctionSym(module, scope), argument.text)
        return None
    if ir.dotted_name(argument) is None:
        return None
    return resolver.resolve(argument, module)


def _arguments(resolver: "Resolver", function: FunctionSym, position: Optional[int],
               keyword: Optional[str]) -> Iterator[Tuple[str, str, ir.Expr]]:
    """(calling module, the function making the call or "", the argument) for each call."""
    callers = _callers(resolver, function)
    if callers is None:
        return
    for module, spellings in callers.items():
        facts = resolver.modules.get(module)
        if facts is None:
            continue
        for call in facts.calls:  # at module level: names only
            if call.func not in spellings:
                continue
            if position is not None and position < len(call.positional):
                dotted = call.positional[position]
            else:
                dotted = dict(call.keywords).get(keyword) if keyword is not None else None
            if dotted is not None:
                yield module, "", _ir_name(dotted)
        heads = {spelling[0] for spelling in spellings}
        for qualname, function_facts in list(facts.functions.items()):
            if not function_facts.may_mention(heads):
                continue  # its body is not read
            for site in function_facts.calls:
                call = site.call
                dotted = ir.dotted_name(call.func) if isinstance(call, ir.Call) else None
                if dotted is None or tuple(dotted.split(".")) not in spellings:
                    continue
                if call.has_splat:
                    continue  # a splat: the argument is not known
                positional = call.positional
                if position is not None and position < len(positional):
                    argument: Optional[ir.Expr] = positional[position]
                else:
                    argument = call.keyword(keyword) if keyword is not None else None
                if argument is not None and _inside(argument.span, call.span):
                    # (Outside the call: a local's value, substituted from where it was
                    # assigned, not followed.)
                    yield module, qualname, argument


def _inside(inner: Optional[ir.Span], outer: Optional[ir.Span]) -> bool:
    return inner is not None and outer is not None \
        and (outer.line, outer.column) <= (inner.line, inner.column) \
        and (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)


def _ir_name(dotted: Tuple[str, ...]) -> ir.Expr:
    expr: ir.Expr = ir.Name(text=dotted[0], id=dotted[0])
    for attr in dotted[1:]:
        expr = ir.Attribute(text=f"{expr.text}.{attr}", value=expr, attr=attr)
    return expr


def _callers(resolver: "Resolver", function: FunctionSym) -> Optional[Dict[str, Set[tuple]]]:
    """The modules that may call ``function``, each with how it spells the function there."""
    found: Dict[str, Set[tuple]] = {function.module: {(function.qualname,)}}
    for module, facts in resolver.modules.items():
        for name, binding in facts.bindings.items():
            if isinstance(binding, FromImportBinding) and binding.name == function.qualname \
                    and resolver.lookup(module, name) == function:
                found.setdefault(module, set()).add((name,))
            elif isinstance(binding, ImportBinding) and (
                    function.module == binding.module
                    or function.module.startswith(binding.module + ".")):
                rest = function.module[len(binding.module):].strip(".")
                found.setdefault(module, set()).add(
                    (name,) + (tuple(rest.split(".")) if rest else ()) + (function.qualname,))
            elif isinstance(binding, FromImportBinding) \
                    and f"{binding.module}.{binding.name}" == function.module:
                found.setdefault(module, set()).add((name, function.qualname))
        if len(found) > MAX_CALLER_MODULES:
            return None
    return found
