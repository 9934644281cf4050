"""Property tests (issue 7): on random valid Python (hypothesmith) and on random mutations of the
fixtures (deleted tokens, swapped brackets, cut lines...), ``check`` never raises, exits 0, 1 or
2, and reports only positions inside the file.

The analysis runs in-process (one worker) so that many examples fit in seconds; one test runs
the command line over a batch of mutants for the exit code contract. Random sources are analysed
without the cache; the mutated fixtures with a cache of the test's own, so that the fixture
project around each mutant (the same files every time) is parsed once, not once per example:
a mutant is new content, so the mutant itself is parsed every time (the cache's exactness is
tests/test_cache_edits.py's).
"""
from __future__ import annotations

import ast
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile_helpers import ROOT, assert_positions_inside, check_json

hypothesmith = pytest.importorskip("hypothesmith")

FIXTURES = ROOT / "fixtures"
FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*.py")
                       if "never_imported" not in p.parts and p.stat().st_size > 0)
# hypothesmith builds libcst nodes and throws away the ones that do not validate or compile:
# how many it throws away depends on the order in which its strategies are drawn, not on us.
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


def analyse(root: Path, paths, prefilter: bool = True, cache_dir: Optional[Path] = None):
    """The findings of ``check paths`` run from ``root``, as the JSON reporter gives them;
    through a cache in ``cache_dir`` when given."""
    from celery_chain_lint import engine
    from celery_chain_lint.config.settings import Settings

    settings = Settings(use_cache=False) if cache_dir is None else \
        Settings(cache_dir=str(cache_dir))
    previous = os.getcwd()
    os.chdir(root)
    try:
        report = engine.check([str(p) for p in paths], settings, prefilter=prefilter, jobs=1)
    finally:
        os.chdir(previous)
    return [finding.to_json() for finding in report.findings]


# ---- random valid Python ----


@PROPERTY
@given(source=hypothesmith.from_grammar())
def test_random_valid_python_is_analysed_without_error(source):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "generated.py").write_text("import celery\n" + source, encoding="utf-8")
        findings = analyse(root, ["generated.py"], prefilter=False)
        assert_positions_inside(findings, root)
        try:
            ast.parse("import celery\n" + source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # hypothesmith's grammar is wider than CPython's in places
        # Valid for CPython: libcst and the nesting scan must accept it too.
        assert [f for f in findings if f["code"] == "CCL999"] == []


@PROPERTY
@given(source=hypothesmith.from_node())
def test_random_libcst_trees_are_analysed_without_error(source):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "generated.py").write_text("import celery\n" + source, encoding="utf-8")
        findings = analyse(root, ["generated.py"], prefilter=False)
        assert_positions_inside(findings, root)


# ---- mutated fixtures ----

_TOKEN = re.compile(r"\w+|'[^'\n]*'|\"[^\"\n]*\"|\S")
BRACKETS = "()[]{}"


def mutate(text: str, rnd: random.Random, count: int) -> str:
    for _ in range(count):
        kind = rnd.choice(["delete-token", "swap-bracket", "delete-line", "duplicate-line",
                           "indent-line", "truncate", "insert-junk", "swap-lines",
                           "delete-char"])
        tokens = list(_TOKEN.finditer(text))
        lines = text.splitlines(keepends=True)
        if kind == "delete-token" and tokens:
            token = rnd.choice(tokens)
            text = text[:token.start()] + text[token.end():]
        elif kind == "swap-bracket":
            positions = [i for i, c in enumerate(text) if c in BRACKETS]
            if positions:
                i = rnd.choice(positions)
                text = text[:i] + rnd.choice(BRACKETS.replace(text[i], "")) + text[i + 1:]
        elif kind == "delete-line" and lines:
            del lines[rnd.randrange(len(lines))]
            text = "".join(lines)
        elif kind == "duplicate-line" and lines:
            i = rnd.randrange(len(lines))
            lines.insert(i, lines[i])
            text = "".join(lines)
        elif kind == "indent-line" and lines:
            i = rnd.randrange(len(lines))
            lines[i] = rnd.choice(["    ", "\t", " "]) + lines[i]
            text = "".join(lines)
        elif kind == "truncate" and text:
            text = text[:rnd.randrange(len(text))]
        elif kind == "insert-junk":
            i = rnd.randrange(len(text) + 1)
            junk = rnd.choice(["(", ")", ":", "|", ".s(", "\\", "'''", "\x00", "\r", "\x0c",
                               "lambda", "@", "é", "\ufeff", "chain(", "group([", "*", "**"])
            text = text[:i] + junk + text[i:]
        elif kind == "swap-lines" and len(lines) > 1:
            i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == "delete-char" and text:
            i = rnd.randrange(len(text))
            text = text[:i] + text[i + 1:]
    return text


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("mutants") / "fixtures"
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("never_imported", "__pycache__"))
    return root


@PROPERTY
@given(index=st.integers(min_value=0, max_value=len(FIXTURE_FILES) - 1),
       seed=st.integers(min_value=0, max_value=2 ** 32), count=st.integers(1, 4))
def test_mutated_fixtures_are_analysed_without_error(fixture_copy, index, seed, count):
    original_path = FIXTURE_FILES[index]
    relative = original_path.relative_to(FIXTURES)
    target = fixture_copy / relative
    original = original_path.read_text()
    mutant = mutate(original, random.Random(seed), count)
    target.write_bytes(mutant.encode("utf-8", "surrogatepass"))
    try:
        # The mutant is reported on; its fixture project around it is the context.
        findings = analyse(fixture_copy.parent, [Path("fixtures") / relative],
                           cache_dir=fixture_copy.parent / "cache")
        assert_positions_inside(findings, fixture_copy.parent)
    finally:
        target.write_text(original)
    for finding in findings:
        assert re.fullmatch(r"CCL\d{3}", finding["code"]), finding
        assert finding["message"], finding


def test_mutants_on_the_command_line_exit_0_1_or_2(tmp_path):
    """A batch of mutants through the CLI (worker processes, cache, reporters): exit code
    contract, no traceback, positions inside the files."""
    shutil.copytree(FIXTURES, tmp_path / "fixtures",
                    ignore=shutil.ignore_patterns("never_imported", "__pycache__"))
    rnd = random.Random(7)
    for path in sorted((tmp_path / "fixtures").rglob("*.py")):
        if rnd.random() < 0.6:
            path.write_bytes(mutate(path.read_text(), rnd, rnd.randint(1, 5)).encode(
                "utf-8", "surrogatepass"))
    code, findings, _ = check_json("fixtures", cwd=tmp_path, timeout=600)
    assert code in (0, 1)
    assert_positions_inside(findings, tmp_path)
    for args in (["--format", "text"], ["--format", "json"], []):
        from hostile_helpers import run_cli

        result = run_cli("check", *args, "fixtures", cwd=tmp_path, timeout=600)  # with cache
        assert result.returncode in (0, 1), result.stderr
        assert b"Traceback" not in result.stderr


# ---- the nesting scan that guards libcst ----

_ATOMS = st.sampled_from(["x", "1", "1.5e-3", "'s'", "f'{x}'", "None", "b'(('", "[]", "{}"])
_BINARY = st.sampled_from([" | ", " + ", " - ", " * ", " ** ", " and ", " or ", " < ", " == ",
                           " if x else ", " @ ", " & ", " >> "])


def _expressions(depth: int):
    if depth == 0:
        return _ATOMS
    inner = _expressions(depth - 1)
    return st.one_of(
        _ATOMS,
        st.tuples(inner, _BINARY, inner).map("".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"[{e}, {e}]"),
        inner.map(lambda e: f"{{'k': {e}}}"),
        inner.map(lambda e: f"f({e}, key={e})"),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"a.b({e}).c[{e}]"),
        inner.map(lambda e: f"(lambda y: {e})"),
        inner.map(lambda e: f"[{e} for y in z if {e}]"),
        inner.map(lambda e: f"{e}.s(1) | {e}.si()"),
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(expression=_expressions(4))
def test_the_nesting_scan_accepts_ordinary_expressions(expression):
    from celery_chain_lint.load.source import check_nesting

    source = f"value = {expression}\n"
    try:
        ast.parse(source)
    except SyntaxError:
        return
    check_nesting(source)  # raises SourceError on a false alarm


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(operator=_BINARY, count=st.integers(min_value=1, max_value=4000),
       atom=st.sampled_from(["x", "a.s(1)", "'s'", "(y)"]))
def test_the_nesting_scan_bounds_what_libcst_is_given(operator, count, atom):
    """A chain of ``count`` operators is a tree ``count`` deep (``a < b < c`` is one node): the
    scan lets through what is below its limit, and stops what is far above it. A chained
    conditional counts twice (the scan counts ``if`` and ``else`` each as a level: erring on the
    safe side of libcst's stack)."""
    from celery_chain_lint.load.source import MAX_EXPRESSION_DEPTH, SourceError, check_nesting

    source = "value = " + operator.join([atom] * (count + 1)) + "\n"
    flat = operator in (" < ", " == ")
    count *= 2 if operator == " if x else " else 1
    try:
        check_nesting(source)
        accepted = True
    except SourceError:
        accepted = False
    if flat or count <= MAX_EXPRESSION_DEPTH - 10:
        assert accepted
    elif count > MAX_EXPRESSION_DEPTH + 10:
        assert not accepted
