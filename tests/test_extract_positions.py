"""Where the extractor places expressions: the spans libcst gave, which findings, fixes and
messages quote, kept when the extractor moved to Python's ``ast`` (whose columns count UTF-8
bytes, whose tuples and generator expressions include their brackets, and whose ``a and b and
c`` is one node). Every value below was what the libcst pass gave for the same source."""
from __future__ import annotations

import ast

import pytest

from celery_chain_lint.facts.extract import extract_module
from celery_chain_lint.facts.ir import Span

SOURCE = r'''from celery import chain, group
from tasks import add, mul

É = "é"; sig = add.s("é", (1, 2))
pair = (
    add.s(1),  # first
    mul.s(2),  # second
)
bare = (add.s(1)), (mul.s(2))
empty = (
    # nothing yet
)
flow = group(add.s(i) for i in range(3))
both = (add.s(1)) and mul.s(2) and (group(
    add.s(3)))
keyed = add.s(1, x=2)[0]
sliced = add.s(1)[1:2, 3]
formatted = f"{add.s(1)!r:>{10}}" "tail"
alone = f"{mul.s(2)}"
chosen = add.s(1) if É else mul.s(2)
later = add.apply_async(1, k=2, *[3], **{"countdown": 1})
class Ok: kind = "inline"; other = add.s(1)
class Block:
    attribute = add.s(1)
    x: int = 2
async def run(a, /, b=1, *rest, c, d=2, **more):
    if a:
        return chain(add.s(1), mul.s(2))
    elif b:
        return add.s(2)
    else:
        if c:
            return mul.s(3)
    with open(a) as handle, open(b):
        yield (handle)
    try:
        pass
    except (ValueError, KeyError) as error:
        raise
    sigs = []
    for item in rest:
        sigs.append(add.s(item))
    return group(sigs)
def \
    continued(x): return x
fielded = f"x {add.s(1), mul.s(2)} y"
'''


@pytest.fixture(scope="module")
def facts():
    return extract_module(ast.parse(SOURCE), "m.py", "m", False, SOURCE)


def value(facts, name):
    return facts.bindings[name].expr


@pytest.mark.parametrize("name, span, text", [
    # bracketed tuples start at their first item and end after their last comma
    ("pair", Span(6, 5, 7, 14), "add.s(1),  # first ..."),
    ("bare", Span(9, 8, 9, 30), "(add.s(1)), (mul.s(2))"),  # brackets of its items only
    ("empty", Span(12, 1, 12, 1), ""),  # at the closing bracket, after the comment
    ("both", Span(14, 8, 15, 15), "(add.s(1)) and mul.s(2) and (group( ..."),
    ("keyed", Span(16, 9, 16, 25), "add.s(1, x=2)[0]"),
    ("chosen", Span(20, 10, 20, 37), "add.s(1) if \u00c9 else mul.s(2)"),
])
def test_spans_and_texts(facts, name, span, text):
    expr = value(facts, name)
    assert (expr.span, expr.text) == (span, text)


def test_columns_count_characters_not_bytes(facts):
    sig = value(facts, "sig")
    assert sig.span == Span(4, 16, 4, 34)
    assert sig.args[0].value.span == Span(4, 22, 4, 25)  # "\u00e9": two bytes, one character
    assert sig.func.attr_span == Span(4, 20, 4, 21)


def test_a_tuple_in_an_f_string_field_spans_its_inside(facts):
    field = value(facts, "fielded").parts[0]  # Python 3.11 places it with its braces
    assert (field.span, field.text) == (Span(46, 16, 46, 34), "add.s(1), mul.s(2)")


def test_a_generator_expression_spans_its_inside(facts):
    generator = value(facts, "flow").args[0].value
    assert (generator.kind, generator.span) == ("generator", Span(13, 14, 13, 40))


def test_boolean_chains_read_one_operation_at_a_time(facts):
    left = value(facts, "both").parts[0]
    assert (left.kind, left.text) == ("BooleanOperation", "(add.s(1)) and mul.s(2)")


def test_opaque_parts_in_source_order(facts):
    assert [p.text for p in value(facts, "keyed").parts] == ["add.s(1, x=2)", "0"]
    assert [p.text for p in value(facts, "sliced").parts] == ["add.s(1)", "1", "2", "3"]
    assert [p.text for p in value(facts, "chosen").parts] == ["add.s(1)", "\u00c9", "mul.s(2)"]
    assert [p.text for p in value(facts, "alone").parts] == ["mul.s(2)"]


def test_adjacent_strings_with_an_f_string_have_no_known_value(facts):
    formatted = value(facts, "formatted")
    assert (type(formatted).__name__, formatted.value) == ("Const", None)
    assert value(facts, "alone").kind == "FormattedString"


def test_arguments_in_the_order_written(facts):
    later = value(facts, "later")
    assert [(a.keyword, a.star, a.value.text) for a in later.args] == [
        (None, "", "1"), ("k", "", "2"), (None, "*", "[3]"), (None, "**", '{"countdown": 1}')]


def test_a_one_line_class_body_has_no_attributes(facts):
    assert facts.classes["Ok"].attributes == {}
    assert list(facts.classes["Block"].attributes) == ["attribute", "x"]


def test_definitions(facts):
    run = facts.functions["run"]
    assert (run.span, run.name_span, run.is_async) == (Span(26, 1, 43, 23), Span(26, 11, 26, 14),
                                                       True)
    assert [(p.name, p.kind, p.has_default) for p in run.params.items] == [
        ("a", "positional-only", False), ("b", "positional-or-keyword", True),
        ("rest", "var-positional", False), ("c", "keyword-only", False),
        ("d", "keyword-only", True), ("more", "var-keyword", False)]
    continued = facts.functions["continued"]
    assert continued.name_span == Span(45, 5, 45, 14)  # after a line continuation


def test_returns_in_branches_and_a_list_built_in_a_loop(facts):
    returns = [(span.line, value.text) for span, value in facts.functions["run"].returns]
    assert returns == [(28, "chain(add.s(1), mul.s(2))"), (30, "add.s(2)"), (33, "mul.s(3)"),
                       (43, "group(sigs)")]
    # the list appended to in the loop is known: ``group(sigs)`` builds from ``add.s(item)``
    assert "add.s(item)" in repr(facts.functions["run"].returns[-1][1])
