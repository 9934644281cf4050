"""Issue 16: recall on comprehension-built fan-outs equals recall on the literal-list form.

Every group and chord header written as a literal list (or as ``group(a, b)``) in the fixtures and
in the rules' INVALID examples is rewritten as comprehensions, each member ``m`` becoming
``*(m for _v in (x,))``, with its first literal argument ``x`` replaced by the comprehension's
variable (whose value the analyser does not know): the findings must be exactly the same.
A group of one member is left alone (CCL011 is about that count: a comprehension's is unknown),
and so are the findings of the rules whose claim needs the count (``NEEDS_THE_COUNT``).
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

from celery_chain_lint import engine
from celery_chain_lint.config.settings import Settings
from celery_chain_lint.rules import ALL_RULES

ROOT = Path(__file__).resolve().parents[1]
FAN_OUT = ("group", "chord")
# CCL022 consecutive-groups: Celery runs the next step once per member of a group of two or
# more; a group of one is unrolled into a plain link. A comprehension's count is unknown.
NEEDS_THE_COUNT = frozenset({"CCL022"})
MEMBER_METHODS = frozenset({"s", "si", "signature", "delay", "apply_async", "set"})


def _is_member(node: ast.expr) -> bool:
    """A signature-like member: ``t.s(...)``, ``t.delay(...)``, ``t(...)``, ``a | b``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return True
    return isinstance(node, ast.Call) and not any(
        isinstance(a, ast.Starred) for a in node.args) and not any(
        k.arg is None for k in node.keywords)


def _fan_out_name(func: ast.expr) -> Optional[str]:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name if name in FAN_OUT else None


def _headers(tree: ast.Module) -> List[List[ast.expr]]:
    """The member lists of every literal group or chord header of two members or more."""
    found: List[List[ast.expr]] = []
    assigned: Dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _fan_out_name(node.func) is None:
            continue
        if any(isinstance(a, ast.Starred) for a in node.args):
            continue
        kind = _fan_out_name(node.func)
        header = node.args[0] if node.args else None
        if isinstance(header, ast.Name) and isinstance(assigned.get(header.id), ast.List):
            header = assigned[header.id]
        if isinstance(header, (ast.List, ast.Tuple)) and (kind == "chord" or len(node.args) == 1):
            members = list(header.elts)
        elif kind == "group":
            members = list(node.args)
        else:
            continue
        if len(members) >= 2 and all(_is_member(m) for m in members):
            found.append(members)
    return found


def _offset(lines: List[str], line: int, column: int) -> int:
    return sum(len(text) for text in lines[:line - 1]) + column


def rewrite(source: str, merge: bool = False) -> Tuple[str, int]:
    """``source`` with every literal header's members as starred comprehensions, lines kept;
    and how many members were rewritten. ``merge``: members that differ only in their first
    literal argument, all on one line, become one comprehension (``[fetch.s(_v) for _v in
    (1, 2)]``, ``group(add.s(_v, 2) for _v in (1, 3))``) instead."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    # Text edits (start, end, replacement), applied from the end.
    edits: List[Tuple[int, int, str]] = []
    count = 0
    for members in _headers(tree):
        rewritten = [_member(source, lines, member) for member in members]
        first, last = members[0], members[-1]
        if merge and len({text for _, _, text, _ in rewritten}) == 1 \
                and first.lineno == last.end_lineno:
            start, end = rewritten[0][0], rewritten[-1][1]
            values = ", ".join(value for _, _, _, value in rewritten)
            element = f"{rewritten[0][2]} for _v in ({values},)"
            before, after = source[:start].rstrip()[-1:], source[end:end + 1]
            if before in "[(" and after in "])":
                # ``[m for ...]``, ``(m for ...)``, ``group(m for ...)``: the only element.
                edits.append((start, end, element))
            else:
                edits.append((start, end, f"*({element})"))
            count += len(members)
            continue
        for start, end, text, value in rewritten:
            edits.append((start, end, f"*({text} for _v in ({value},))"))
            count += 1
    for start, end, replacement in sorted(edits, reverse=True):
        source = source[:start] + replacement + source[end:]
    return source, count


def _member(source: str, lines: List[str], member: ast.expr) -> Tuple[int, int, str, str]:
    """(start, end, the member with ``_v`` for its first literal argument, that argument)."""
    start = _offset(lines, member.lineno, member.col_offset)
    end = _offset(lines, member.end_lineno, member.end_col_offset)
    text = source[start:end]
    value = "0"
    call = member
    while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
            and call.func.attr == "set" and isinstance(call.func.value, ast.Call):
        call = call.func.value  # ``t.s(1).set(...)``: the signature's own arguments
    if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant) \
            and call.args[0].lineno == call.args[0].end_lineno:
        argument = call.args[0]
        a_start = _offset(lines, argument.lineno, argument.col_offset) - start
        a_end = _offset(lines, argument.end_lineno, argument.end_col_offset) - start
        value = text[a_start:a_end]
        text = text[:a_start] + "_v" + text[a_end:]
    return start, end, text, value


def _findings(root: Path) -> Set[Tuple[str, int, str]]:
    report = engine.check([str(root)], Settings(use_cache=False), jobs=1)
    return {(Path(f.path).relative_to(root).as_posix(), f.span.line, f.code)
            for f in report.findings}


def test_the_rewrite_is_a_comprehension_of_the_same_members():
    source = ("chord([fetch.s(1), fetch.s(2).set(queue='a')], merge.s())\n"
              "group(add.s(1, 2),\n      add.delay(3, 4))\n")
    rewritten, count = rewrite(source)
    assert count == 4
    assert rewritten == (
        "chord([*(fetch.s(_v) for _v in (1,)), *(fetch.s(_v).set(queue='a') for _v in (2,))],"
        " merge.s())\n"
        "group(*(add.s(_v, 2) for _v in (1,)),\n      *(add.delay(_v, 4) for _v in (3,)))\n")
    ast.parse(rewritten)
    merged, count = rewrite(source, merge=True)
    assert count == 4
    assert merged.splitlines()[1:] == rewritten.splitlines()[1:]  # different shapes
    merged, _ = rewrite("chord([fetch.s(1), fetch.s(2)], merge.s())\n"
                        "group(add.s(1, 2), add.s(3, 2))\n", merge=True)
    assert merged == ("chord([fetch.s(_v) for _v in (1, 2,)], merge.s())\n"
                      "group(add.s(_v, 2) for _v in (1, 3,))\n")


@pytest.fixture(scope="module")
def literal_findings(tmp_path_factory):
    """The findings of a copy of the fixtures as written (paths relative to the copy): what
    both rewrites are compared with."""
    literal = tmp_path_factory.mktemp("fan-outs") / "literal"
    shutil.copytree(ROOT / "fixtures", literal)
    return _findings(literal)


@pytest.mark.parametrize("merge", [False, True], ids=["starred", "merged"])
def test_fixture_fan_outs_as_comprehensions_give_the_same_findings(tmp_path, merge,
                                                                   literal_findings):
    rewritten_tree = tmp_path / "comprehension"
    shutil.copytree(ROOT / "fixtures", rewritten_tree)
    total = 0
    for path in sorted(rewritten_tree.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        rewritten, count = rewrite(source, merge)
        if count:
            path.write_text(rewritten, encoding="utf-8")
            total += count
    assert total >= 40, total  # the fixtures' fan-outs were found and rewritten
    before, after = literal_findings, _findings(rewritten_tree)
    assert sorted(f for f in before - after if f[2] not in NEEDS_THE_COUNT) == [], \
        "found with literal lists only"
    assert sorted(after - before) == [], "found with comprehensions only"


def _invalid_examples():
    for rule in ALL_RULES:
        if rule.code in NEEDS_THE_COUNT:
            continue
        for index, source in enumerate(rule.INVALID):
            for merge in (False, True):
                rewritten, count = rewrite(source, merge)
                if count:
                    yield pytest.param(source, rewritten,
                                       id=f"{rule.code}-invalid-{index}-{'mst'[merge::2]}")


@pytest.mark.parametrize("source, rewritten", list(_invalid_examples()))
def test_rule_examples_as_comprehensions_give_the_same_findings(tmp_path, source, rewritten):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "example.py").write_text(source)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "example.py").write_text(rewritten)
    def counted(findings):
        return {f for f in findings if f[2] not in NEEDS_THE_COUNT}

    assert counted(_findings(tmp_path / "a")) == counted(_findings(tmp_path / "b"))
