"""Facts read from a file's whole source beside the facts pass, which may not see all of it
(function bodies and class statements are elided before it runs: load/bodies.py).

- ``ModuleFacts.may_add_attributes`` and ``may_check_attributes``: whether the bytes spell a
  way for the module to get attributes at run time, or to add or check another module's
  (CCL015 reads them): plain substring searches;
- ``ModuleFacts.config_uses``: in a module where Celery reads a Flask app's configuration
  (``celery.conf.update(flask_app.config)``, a root the facts pass keeps), how each
  module-level name made by a call is used anywhere in the module, read from its ``ast``: the
  one the eliding pass parses anyway, or parsed here for that rare module only.

The load layer calls ``add_whole_file_facts`` once a file's facts are made, with the exact bytes
they were made from (a buffer given on standard input or by the editor, or the file read once):
nothing after the facts pass reads the file again.
"""
from __future__ import annotations

import ast
import re
from typing import Dict, Iterable, List, Optional, Tuple

from celery_chain_lint.facts import ir
from celery_chain_lint.facts.model import ConfigUses, ModuleFacts, ValueBinding
from celery_chain_lint.facts.roots import dotted_parts

# A value written that is not a literal (``ConfigUses.written`` says so).
NOT_LITERAL = object()
# Methods of a Flask config writing literals (index/flask.py).
CONFIG_WRITES = frozenset({"update", "from_mapping"})
# Source text through which a module may get attributes the analyser does not see.
ADDS_ATTRIBUTES = (b"__getattr__", b"globals()", b"setattr(", b"sys.modules", b"__dict__",
                   b"vars(", b"exec(", b"import_module")
# Source text through which a module may add or check another module's attributes: what
# ``CHECKS_ATTRIBUTES.search`` finds, found faster (``checks_attributes``).
CHECKS_ATTRIBUTES = re.compile(
    rb"(?<!\w)(?:setattr|hasattr|getattr)\s*\(|sys\.modules|__dict__")
_OPENING = re.compile(rb"\s*\(")
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def add_whole_file_facts(facts: ModuleFacts, data: bytes,
                         tree: Optional[ast.Module] = None) -> ModuleFacts:
    """``facts`` with what is read from the whole of ``data`` (``tree``: ``ast.parse(data)``,
    when the caller has it)."""
    facts.may_add_attributes = any(word in data for word in ADDS_ATTRIBUTES)
    facts.may_check_attributes = checks_attributes(data)
    if b"config" in data and reads_a_config(facts):
        if tree is None:
            try:
                tree = ast.parse(data)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                tree = None  # nothing said of the config then
        if tree is not None:
            facts.config_uses = config_uses(tree, [
                name for name, binding in facts.bindings.items()
                if isinstance(binding, ValueBinding) and isinstance(binding.expr, ir.Call)])
    return facts


def checks_attributes(data: bytes) -> bool:
    """``CHECKS_ATTRIBUTES.search(data)`` is not None, without a regular expression tried at
    every byte (ten times slower): ``attr`` found first, what surrounds it checked then."""
    if b"sys.modules" in data or b"__dict__" in data:
        return True
    find = data.find
    at = find(b"attr")
    while at != -1:
        start = at - 3
        if start >= 0 and data[start:at] in (b"set", b"has", b"get") \
                and (start == 0 or data[start - 1] not in _WORD_BYTES) \
                and _OPENING.match(data, at + 4) is not None:
            return True
        at = find(b"attr", at + 4)
    return False


def reads_a_config(facts: ModuleFacts) -> bool:
    """Whether a root of the module is ``<x>.conf.update(..., <y>.config, ...)``: where the app
    index reads a Flask config (index/apps.py). Such a call is always read by the facts pass
    (``roots.body_reading``: a body spelling ``conf`` and ``update`` is read at once)."""
    for root in facts.roots:
        for node in ir.walk(root.expr):
            if isinstance(node, ir.Call) and isinstance(node.func, ir.Attribute) \
                    and node.func.attr == "update" and isinstance(node.func.value, ir.Attribute) \
                    and node.func.value.attr == "conf" \
                    and any(not arg.keyword and not arg.star
                            and isinstance(arg.value, ir.Attribute) and arg.value.attr == "config"
                            for arg in node.args):
                return True
    return False


# ---- how a module-level name is used (``ConfigUses``) ----


def config_uses(tree: ast.Module, names: Iterable[str]) -> Dict[str, Optional[ConfigUses]]:
    """How each of ``names`` is used in the module: every occurrence of the name, in functions
    too, must be one this reading follows (else None):

    - ``name = ...`` once, a module-level statement;
    - ``name.attr`` for any attribute but ``config`` (``app.route``, ``app.import_name``);
    - ``name.config[...]`` read; ``name.config["KEY"] = value``, ``name.config.update(...)``
      or ``name.config.from_mapping(...)`` as module-level statements, with literal keys (a
      value may not be a literal: that setting is then unknown); ``x.conf.update(name.config)``;
    - ``f(..., name, ...)``: the index decides whether ``f`` is one that may take it.
    """
    occurrences: Dict[str, List[ast.Name]] = {name: [] for name in names}
    if not occurrences:
        return {}
    parents: Dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    top = {id(statement) for statement in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in occurrences:
            occurrences[node.id].append(node)
    return {name: _uses(parents, top, found) for name, found in occurrences.items()}


def _uses(parents: Dict[int, ast.AST], top, found: List[ast.Name]) -> Optional[ConfigUses]:
    written: Dict[str, Tuple[object, int]] = {}
    passed_to: List[Optional[Tuple[str, ...]]] = []
    assigned = 0
    for node in found:
        parent = parents.get(id(node))
        if isinstance(node.ctx, ast.Store):
            assigned += 1  # ``app = Flask(__name__)``, once, at module level
            if assigned > 1 or not (isinstance(parent, ast.Assign) and id(parent) in top):
                return None
            continue
        if isinstance(parent, ast.Attribute) and parent.value is node:
            if parent.attr != "config":
                continue  # ``app.route``, ``app.name``, ``app.import_name``...
            if not _config_use(parents, parent, top, written):
                return None
            continue
        if isinstance(parent, ast.Call) and node in parent.args:
            passed_to.append(dotted_parts(parent.func))
            continue
        return None
    return ConfigUses(tuple((key, value is not NOT_LITERAL,
                             None if value is NOT_LITERAL else value, line)
                            for key, (value, line) in written.items()), tuple(passed_to))


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NOT_LITERAL


def _config_use(parents: Dict[int, ast.AST], config: ast.Attribute, top,
                written: Dict[str, Tuple[object, int]]) -> bool:
    """Whether ``<app>.config`` is used in a way followed (recording what it writes)."""
    user = parents.get(id(config))
    if isinstance(user, ast.Subscript) and user.value is config:
        if isinstance(user.ctx, ast.Load):
            return True  # ``app.config["CELERY_BROKER_URL"]``: a read
        statement = parents.get(id(user))
        key = _literal(user.slice)
        if not (isinstance(statement, ast.Assign) and id(statement) in top
                and len(statement.targets) == 1 and isinstance(key, str)):
            return False
        written[key] = (_literal(statement.value), statement.lineno)
        return True
    if isinstance(user, ast.Attribute) and user.value is config and user.attr in CONFIG_WRITES:
        call = parents.get(id(user))
        statement = parents.get(id(call))
        if not (isinstance(call, ast.Call) and call.func is user
                and isinstance(statement, ast.Expr) and id(statement) in top):
            return False
        for argument in call.args:
            mapping = _literal(argument)
            if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
                return False
            for key, value in mapping.items():
                written[key] = (value, call.lineno)
        for keyword in call.keywords:
            if keyword.arg is None:
                return False
            written[keyword.arg] = (_literal(keyword.value), call.lineno)
        return True
    if isinstance(user, ast.Call) and config in user.args:
        # ``celery.conf.update(app.config)``: Celery reading it.
        func = user.func
        return isinstance(func, ast.Attribute) and func.attr == "update" \
            and isinstance(func.value, ast.Attribute) and func.value.attr == "conf"
    return False


