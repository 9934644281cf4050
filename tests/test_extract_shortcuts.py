"""The extractor's shortcuts around slow libcst paths give exactly what libcst gives:
positions (one code generation recording tuples, instead of ``MetadataWrapper``) and plain
literals (read directly, instead of ``evaluated_value``'s ``ast.literal_eval``)."""
from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from celery_chain_lint.load.discovery import discover
from celery_chain_lint.facts.extract import _NOT_PLAIN, _plain_literal, positions

ROOT = Path(__file__).resolve().parents[1]


def _modules():
    paths = [str(ROOT / "fixtures")]
    try:
        import celery

        package = Path(celery.__file__).parent
        paths += [str(package / "canvas.py"), str(package / "app" / "task.py")]
    except ImportError:
        pass
    for source in discover(paths):
        try:
            yield cst.parse_module(Path(source.path).read_bytes())
        except Exception:
            continue  # the fixtures of files that do not parse


def test_positions_equal_libcsts_position_provider():
    nodes = 0
    for module in _modules():
        ours, code = positions(module)
        assert code == module.code
        # Given the code (the parsers' callers have it), no token is kept: same positions.
        assert positions(module, code) == (ours, code)
        theirs = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        for node, where in theirs.items():
            assert ours[id(node)] == (where.start.line, where.start.column,
                                      where.end.line, where.end.column), node
            nodes += 1
        assert len(ours) == len(theirs)
    assert nodes > 50_000


class _Literals(cst.CSTVisitor):
    def __init__(self):
        self.found = []

    def visit_SimpleString(self, node):
        self.found.append(node)

    def visit_Integer(self, node):
        self.found.append(node)


def _evaluated(node):
    try:
        return node.evaluated_value
    except Exception:
        return None


def test_plain_literals_equal_evaluated_value():
    read_directly = 0
    for module in _modules():
        visitor = _Literals()
        module.visit(visitor)
        for node in visitor.found:
            value = _plain_literal(node)
            if value is not _NOT_PLAIN:
                read_directly += 1
                assert (type(value), value) == (type(_evaluated(node)), _evaluated(node)), \
                    node.value
    assert read_directly > 1000


@pytest.mark.parametrize("literal, plain", [
    ('""', True), ("''", True), ('""""""', True), ("''''''", True), ('"""a"""', True),
    ("'\"'", True), ('"\'\'\'"', True), ("0", True), ("7", True), ("10", True),
    # Read by ``evaluated_value``: escapes, prefixes, a raw CR inside, other bases, separators.
    ('"a\\nb"', False), ("r'\\d'", False), ("b'x'", False), ("u'x'", False),
    ('"""x\r\ny"""', False), ("00", False), ("0x1f", False), ("1_000", False), ("0o7", False),
    ("0b1", False),
])
def test_odd_literals(literal, plain):
    node = cst.parse_expression(literal)
    value = _plain_literal(node)
    assert (value is not _NOT_PLAIN) is plain
    if plain:
        assert (type(value), value) == (type(_evaluated(node)), _evaluated(node))
