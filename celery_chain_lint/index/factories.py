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

Calls are found by reading the source of the modules that can call the function (its own,
and those importing it or its module) with ``ast``, as ``index/flask.py`` does: the facts
keep module-level calls only when they build or configure something Celery-related.
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Set, Tuple

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
    for caller, scopes, argument in _arguments(resolver, function, position,
                                             None if param.kind == POSITIONAL_ONLY
                                             else parameter):
        symbol = _resolve_argument(resolver, caller, scopes, argument)
        if isinstance(symbol, AppSym):
            found[id(symbol.call)] = symbol
    return next(iter(found.values())) if len(found) == 1 else None


def _resolve_argument(resolver: "Resolver", module: str, scopes: Tuple[ast.AST, ...],
                      argument: ast.expr) -> object:
    """What the argument is, read in the functions around the call (outermost first)."""
    dotted = _dotted(argument)
    if dotted is None:
        return None
    head = dotted[0]
    for depth, scope in enumerate(scopes):
        if head in _parameters(scope):
            if depth == 0 and len(scopes) == 1 and len(dotted) == 1 \
                    and isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # ``def register_all(app): register(app)``: the calls of that one.
                return resolver.app_of_parameter(FunctionSym(module, scope.name), head)
            return None
        if head in _bound(scope):
            return None  # a local of the calling function: its value is not followed here
    expr: ir.Expr = ir.Name(text=head, id=head)
    for attr in dotted[1:]:
        expr = ir.Attribute(text=f"{expr.text}.{attr}", value=expr, attr=attr)
    return resolver.resolve(expr, module)


def _arguments(resolver: "Resolver", function: FunctionSym, position: Optional[int],
               keyword: Optional[str]) -> Iterator[Tuple[str, Tuple[ast.AST, ...], ast.expr]]:
    """(calling module, the functions around the call, the argument) for each call."""
    callers = _callers(resolver, function)
    if callers is None:
        return
    for module, spellings in callers.items():
        tree = module_tree(resolver, module)
        if tree is None:
            continue
        for call, scopes in _calls(tree):
            if _dotted(call.func) not in spellings:
                continue
            if any(isinstance(a, ast.Starred) for a in call.args) \
                    or any(k.arg is None for k in call.keywords):
                continue  # a splat: the argument is not known
            if position is not None and position < len(call.args):
                yield module, scopes, call.args[position]
            elif keyword is not None:
                for item in call.keywords:
                    if item.arg == keyword:
                        yield module, scopes, item.value


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


def module_tree(resolver: "Resolver", module: str) -> Optional[ast.Module]:
    """The module's file read again with ``ast`` (once a run): what the facts do not keep
    (the calls of a factory, the keys a Flask factory writes). From disk: a buffer given on
    standard input or by the editor is not what is read here."""
    cache = resolver.memo.setdefault(("factories.trees",), {})
    if module not in cache:
        facts = resolver.modules.get(module)
        tree = None
        if facts is not None and facts.path:
            try:
                with open(facts.path, "rb") as handle:
                    tree = ast.parse(handle.read())
            except (OSError, SyntaxError, ValueError):
                tree = None
        cache[module] = tree
    return cache[module]


def _calls(tree: ast.Module) -> Iterator[Tuple[ast.Call, Tuple[ast.AST, ...]]]:
    """Every call of the module, with the functions around it, outermost first."""
    stack: List[Tuple[ast.AST, Tuple[ast.AST, ...]]] = [(statement, ()) for statement in tree.body]
    while stack:
        node, scopes = stack.pop()
        if isinstance(node, ast.Call):
            yield node, scopes
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scopes = scopes + (node,)
        elif isinstance(node, ast.ClassDef):
            scopes = scopes + (node,)  # a method's names are not the module's
        for child in ast.iter_child_nodes(node):
            stack.append((child, scopes))


def _parameters(scope: ast.AST) -> Set[str]:
    if isinstance(scope, ast.ClassDef):
        return set()
    arguments = scope.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return set(names)


def _bound(scope: ast.AST) -> Set[str]:
    bound = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return bound


def _dotted(expr: ast.expr) -> Optional[tuple]:
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return tuple(reversed(parts))
