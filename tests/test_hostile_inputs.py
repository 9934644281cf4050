"""Hostile file contents: every one gets a located CCL999 or is analysed normally; the other files
of the run are still analysed; exit codes stay 0/1/2; never a traceback (issue 7).

One ``check`` run over a project holding every input (it is big enough to be spread over worker
processes, so the facts of every analysable input must also survive pickling), then one test
per input reading its findings.
"""
from __future__ import annotations

import codecs
import sys
from pathlib import Path

import pytest

from hostile_helpers import BUG, TASKS, assert_positions_inside, by_path, check_json, lines_of

HEADER = b"from celery import chain\nfrom tasks import add, log_done\n"
BUG_B = BUG.encode() + b"\n"


def deep(prefix: bytes, middle: bytes, suffix: bytes, times: int) -> bytes:
    return prefix * times + middle + suffix * times


# name -> (bytes, expectation). ("ok",): analysed, and the BUG line in it is reported (CCL001)
# where the text says; ("ccl999", fragment, line, column): exactly one CCL999 there, with
# ``fragment`` in its message (column None: not checked); ("none",): no finding at all.
CASES = {
    "syntax_error": (HEADER + b"def f(:\n    pass\n" + BUG_B,
                     ("ccl999", "syntax error: invalid syntax", 3, 7)),
    "python2_print": (HEADER + b"print 'hello'\n" + BUG_B,
                      ("ccl999", "Missing parentheses in call to 'print'", 3, 1)),
    "python2_backticks": (HEADER + b"x = `1`\n" + BUG_B, ("ccl999", "syntax error", 3, None)),
    "python2_octal": (HEADER + b"x = 0777\n" + BUG_B, ("ccl999", "syntax error", 3, None)),
    # Valid only in newer Pythons than some that run the linter: PEP 695 (3.12), PEP 750
    # t-strings and PEP 758 unparenthesised except (3.14). The grammar is the running
    # Python's (as flake8's and mypy's): an older one says which Python read the file.
    "newer_python": (HEADER + b"type Alias = list[int]\n\n\ndef first[T](items: list[T]) -> T:\n"
                     b"    return items[0]\n\n\ngreeting = t'hello {first}'\ntry:\n    pass\n"
                     b"except ValueError, TypeError:\n    pass\n" + BUG_B,
                     ("ok",) if sys.version_info >= (3, 14) else
                     ("ccl999", f"(as Python {sys.version_info[0]}.{sys.version_info[1]} reads it)",
                      3 if sys.version_info < (3, 12) else 10, None)),
    "undecodable_bytes": (HEADER + b"x = '\xff'\n" + BUG_B,
                          ("ccl999", "cannot decode byte 0xff as UTF-8", 3, 6)),
    "unknown_coding_cookie": (b"# -*- coding: klingon -*-\n" + HEADER + BUG_B,
                              ("ccl999", "unknown encoding 'klingon'", 1, 15)),
    "wrong_coding_cookie": (b"# -*- coding: ascii -*-\n" + HEADER + b"x = '\xc3\xa9'\n" + BUG_B,
                            ("ccl999", "cannot decode byte 0xc3 as declared ascii", 4, 6)),
    "non_ascii_compatible_cookie": (b"# coding: utf-16\n" + HEADER + BUG_B,
                                    ("ccl999", "not an ASCII-compatible encoding", 1, 11)),
    "latin1_cookie": (b"# -*- coding: latin-1 -*-\n" + HEADER + b"x = '\xe9t\xe9'\n" + BUG_B,
                      ("ok",)),
    "utf8_bom": (codecs.BOM_UTF8 + HEADER + b"x = '\xc3\xa9t\xc3\xa9'\n" + BUG_B, ("ok",)),
    "utf8_bom_and_other_cookie": (codecs.BOM_UTF8 + b"# coding: latin-1\n" + HEADER + BUG_B,
                                  ("ccl999", "byte-order mark", 1, 11)),
    "utf16_with_bom": ((HEADER + BUG_B).decode().encode("utf-16"),
                       ("ccl999", "UTF-16 encoded", 1, 1)),
    "utf16_without_bom": ((HEADER + BUG_B).decode().encode("utf-16-le"),
                          ("ccl999", "looks UTF-16 encoded", 1, 2)),
    "utf32_with_bom": ((HEADER + BUG_B).decode().encode("utf-32"),
                       ("ccl999", "UTF-32 encoded", 1, 1)),
    "crlf": ((HEADER + b"\n" + BUG_B).replace(b"\n", b"\r\n"), ("ok",)),
    "cr_only": ((HEADER + b"\n" + BUG_B).replace(b"\n", b"\r"), ("ok",)),
    "mixed_line_endings": (b"from celery import chain\r\nfrom tasks import add, log_done\r\r\n"
                           + BUG_B, ("ok",)),
    "nul_byte": (HEADER + b"x = 1\x00\n" + BUG_B, ("ccl999", "cannot contain null bytes", 3, 6)),
    "binary_with_nuls": (bytes(range(256)) * 8, ("ccl999", "binary file", 1, 1)),
    "binary_without_nuls": (b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4,
                            ("ccl999", "cannot decode byte 0x89", 1, 1)),
    "empty": (b"", ("none",)),
    "comments_only": (b"# just a comment\n#\n# another one\n", ("none",)),
    "no_final_newline": (HEADER + BUG_B.rstrip(b"\n"), ("ok",)),
    "form_feeds": (HEADER + b"\x0c\n\x0cx = 1\n" + BUG_B, ("ok",)),
    "unicode_line_separators": (HEADER + "x = '\u2028\u2029\x85'  # \u2028 \x0b\n".encode()
                                + BUG_B, ("ok",)),
    "tabs_and_spaces": (HEADER + b"if True:\n\tif True:\n        pass\n" + BUG_B,
                        ("ccl999", "inconsistent use of tabs and spaces", 5, None)),
    "backslash_at_end": (HEADER + BUG_B + b"x = 1 \\\n", ("ccl999", "syntax error", 4, None)),
    "unterminated_string": (HEADER + b"x = '''never closed\n" + BUG_B,
                            ("ccl999", "unterminated triple-quoted string", 3, None)),
    "long_line_1mb": (HEADER + b"x = '" + b"a" * (1 << 20) + b"'\n" + BUG_B, ("ok",)),
    # 100,000 lines, mostly comments and blank lines, which libcst reads fast (a statement costs
    # it about a millisecond: 100,000 statements would dominate the suite).
    "long_file_100k_lines": (HEADER + b"# filler\n\n" * 49_000 + b"x = 1\n" * 2_000 + BUG_B,
                             ("ok",)),
    # Memory stays bounded: beyond 200,000 tokens a file is not given to libcst (~2.5 KB each).
    "too_many_tokens": (HEADER + b"x = 1\n" * 160_000 + BUG_B,
                        ("ccl999", "file too large to analyse", None, None)),
    "parentheses_5000": (HEADER + b"x = " + deep(b"(", b"1", b")", 5000) + b"\n" + BUG_B,
                         ("ccl999", "too many nested parentheses", 3, 205)),
    "lists_5000": (HEADER + b"x = " + deep(b"[", b"", b"]", 5000) + b"\n" + BUG_B,
                   ("ccl999", "too many nested parentheses", 3, 205)),
    "nested_chains_500": (HEADER + b"x = " + deep(b"chain(add.s(1, 2), ", b"add.s(3)", b")", 500)
                          + b"\n" + BUG_B, ("ccl999", "too many nested parentheses", 3, None)),
    # CPython accepts 199 levels; a nested call costs several levels of pickling.
    "calls_199": (HEADER + b"x = " + deep(b"f(", b"", b")", 199) + b"\n" + BUG_B, ("ok",)),
    "pipes_1000": (HEADER + b"workflow = add.s(1, 2) | " + b"add.s(1) | " * 1000
                   + b'log_done.s("done")\nworkflow.delay()\n' + BUG_B, ("ok",)),
    "attribute_chain_3000": (HEADER + b"x = a" + b".b" * 3000 + b"\n" + BUG_B,
                             ("ccl999", "expression nested too deeply", 3, None)),
    "unary_5000": (HEADER + b"x = " + b"-" * 5000 + b"1\n" + BUG_B,
                   ("ccl999", "expression nested too deeply", 3, None)),
    "not_5000": (HEADER + b"x = " + b"not " * 5000 + b"1\n" + BUG_B,
                 ("ccl999", "expression nested too deeply", 3, None)),
    "adjacent_strings_5000": (HEADER + b"x = " + b"'a' " * 5000 + b"\n" + BUG_B,
                              ("ccl999", "expression nested too deeply", 3, None)),
    "lambdas_3000": (HEADER + b"x = " + b"lambda: " * 3000 + b"1\n" + BUG_B,
                     ("ccl999", "expression nested too deeply", 3, None)),
    "sum_20000": (HEADER + b"x = " + b" + ".join([b"1"] * 20000) + b"\n" + BUG_B,
                  ("ccl999", "expression nested too deeply", 3, None)),
    "subscripts_5000": (HEADER + b"x = a" + b"[0]" * 5000 + b"\n" + BUG_B,
                        ("ccl999", "expression nested too deeply", 3, None)),
    "if_blocks_101": (HEADER + b"".join(b"    " * i + b"if x:\n" for i in range(101))
                      + b"    " * 101 + b"pass\n" + BUG_B,
                      ("ccl999", "too many levels of indentation", None, None)),
    # Local values substituted into each other: x = x | x doubles the tree at every line.
    "local_doubling": (HEADER + b"def flow():\n    x = add.s(1, 2)\n" + b"    x = x | x\n" * 60
                       + b"    x.delay()\n" + BUG_B, ("ok",)),
    "module_doubling": (HEADER + b"c0 = add.s(1, 2)\n"
                        + b"".join(b"c%d = c%d | c%d\n" % (i + 1, i, i) for i in range(60))
                        + BUG_B, ("ok",)),
    "aliases_500": (HEADER + b"a0 = add\n"
                     + b"".join(b"a%d = a%d\n" % (i + 1, i) for i in range(500)) + BUG_B,
                     ("ok",)),
    "decorators_300": (HEADER + b"from celery import shared_task\n"
                        b"def d0(f):\n    return shared_task(f)\n"
                        + b"".join(b"def d%d(f):\n    return d%d(f)\n" % (i + 1, i)
                                   for i in range(300))
                        + b"@d300\ndef t(x):\n    pass\n" + BUG_B, ("ok",)),
    # Decorator factories calling two others each (2^100 paths), and calling themselves.
    "factories_branching": (HEADER + b"from celery import shared_task\n"
                            b"def f0(**kw):\n    return shared_task(**kw)\n"
                            + b"".join(b"def f%d(**kw):\n    if kw:\n        return f%d(**kw)\n"
                                       b"    return f%d(**kw)\n" % (i + 1, i, i)
                                       for i in range(100))
                            + b"def again(**kw):\n    return again(**kw)\n"
                            b"@f100()\ndef t(x):\n    pass\n@again()\ndef u(x):\n    pass\n"
                            + BUG_B, ("ok",)),
    "classes_300": (HEADER + b"from celery import Task\nclass C0(Task):\n    pass\n"
                     + b"".join(b"class C%d(C%d):\n    pass\n" % (i + 1, i) for i in range(300))
                     + b"class T(C300):\n    def run(self, x):\n        return x\n"
                     + BUG_B, ("ok",)),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "pyproject.toml").write_text("")
    (root / "tasks.py").write_text(TASKS)
    for name, (data, _) in CASES.items():
        (root / f"{name}.py").write_bytes(data)
    code, findings, stderr = check_json(".", cwd=root, timeout=600)
    return root, code, findings, stderr


def test_the_run_exits_with_findings_and_no_traceback(run):
    _, code, findings, _ = run
    assert code == 1
    assert findings


def test_every_position_is_inside_its_file(run):
    root, _, findings, _ = run
    assert_positions_inside(findings, root)


def test_the_task_module_itself_is_clean(run):
    _, _, findings, _ = run
    assert "tasks.py" not in by_path(findings)


@pytest.mark.parametrize("name", sorted(CASES))
def test_input(run, name):
    root, _, findings, _ = run
    data, expected = CASES[name]
    found = by_path(findings).get(f"{name}.py", [])
    unanalysable = [f for f in found if f["code"] == "CCL999"]
    if expected[0] == "none":
        assert found == []
    elif expected[0] == "ok":
        assert unanalysable == [], unanalysable
        lines = lines_of(data)
        line = max(i for i, text in enumerate(lines, 1) if text.startswith(BUG))
        column = lines[line - 1].index("log_done.s") + 1
        assert any(f["code"] == "CCL001" and (f["line"], f["column"]) == (line, column)
                   for f in found), found
    else:
        _, fragment, line, column = expected
        assert len(found) == 1 and len(unanalysable) == 1, found
        finding = unanalysable[0]
        assert finding["name"] == "could-not-analyse"
        assert fragment in finding["message"], finding
        if line is not None:
            assert finding["line"] == line, finding
        if column is not None:
            assert finding["column"] == column, finding


def test_pipes_1000_reports_the_last_link(run):
    """The last link of 1,000 chained ``|`` receives add's result: found, where it is."""
    root, _, findings, _ = run
    found = by_path(findings).get("pipes_1000.py", [])
    lines = lines_of((root / "pipes_1000.py").read_bytes())
    column = lines[2].index('log_done.s("done")') + 1
    assert any(f["code"] == "CCL001" and (f["line"], f["column"]) == (3, column) for f in found)


def test_a_file_that_cannot_be_analysed_alone_exits_1(tmp_path):
    (tmp_path / "broken.py").write_bytes(b"import celery\ndef f(:\n")
    code, findings, _ = check_json("broken.py", cwd=tmp_path)
    assert code == 1
    assert [(f["code"], f["line"], f["column"]) for f in findings] == [("CCL999", 2, 7)]


def test_standard_input_with_bad_bytes(tmp_path):
    from hostile_helpers import run_cli

    for data in (b"import celery\nx = '\xff'\n", b"\x00\x01\x02", "x = 1\n".encode("utf-16"),
                 b"import celery\n" + deep(b"(", b"", b")", 5000)):
        result = run_cli("check", "--no-cache", "--stdin-filename", "piped.py", "-",
                         cwd=tmp_path, input=data)
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 1, stderr
        assert "Traceback" not in stderr
        assert b"CCL999" in result.stdout


def test_analyse_file_never_raises_on_internal_errors(monkeypatch):
    """A bug of ours in one file's facts pass is that file's CCL999, not the run's end."""
    from celery_chain_lint.load import reading
    from celery_chain_lint.load.discovery import SourceFile
    from celery_chain_lint.facts import extract

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(extract, "extract_module", broken)
    facts, problem = reading.analyse_file(SourceFile("x.py", "x", False, b"import celery\n"))
    assert facts is None
    assert problem.code == "CCL999" and "internal error" in problem.message
    assert "KeyError" in problem.message


def test_the_nesting_scan_accepts_what_cpython_accepts():
    """The pre-parse scan never refuses a file CPython parses: the analyser's own sources and
    tricky token sequences."""
    import ast

    from celery_chain_lint.load.source import check_nesting

    samples = [path.read_text() for path in (Path(__file__).parents[1] / "celery_chain_lint")
               .rglob("*.py")]
    samples += [
        "x = " + "(" * 200 + "1" + ")" * 200 + "\n",
        "x = " + " | ".join(["a.s(1)"] * 1000) + "\n",
        "x = {" + ", ".join(f"'k{i}': -{i}.5e-3" for i in range(20000)) + "}\n",
        "x = [" + ", ".join(f"a.b.c(d)[{i}]" for i in range(20000)) + "]\n",
        "s = 'a' 'b' '''c\n(((''' \"d\" r'\\'' f'{x!r:>{10}}'\nb = b'((' rb'[['\n",
        "# " + "(" * 1000 + "\n",
        "x = 1 if a else 2 if b else 3\nlambda: (lambda: 1)\n",
        "@decorator\ndef f(*args, **kwargs) -> None: ...\n",
    ]
    for sample in samples:
        ast.parse(sample)
        check_nesting(sample, max_tokens=10 ** 7)  # the nesting estimate, not the size


def test_parse_and_extract_run_on_a_deep_stack():
    """libcst's visitors recurse once per level: 1,000 levels need more than the default stack
    and recursion limit, which run_deep gives, and restores."""
    import sys

    from celery_chain_lint.load.source import run_deep

    def recurse(n):
        return 0 if n == 0 else 1 + recurse(n - 1)

    limit = sys.getrecursionlimit()
    assert run_deep(recurse, 20_000) == 20_000
    assert sys.getrecursionlimit() == limit
    with pytest.raises(ZeroDivisionError):
        run_deep(lambda: 1 / 0)


def _nesting_verdict(check, text, *tree):
    from celery_chain_lint.load.source import SourceError

    try:
        check(text, *tree)
    except SourceError as error:
        return error.message, error.line, error.column
    return None


@pytest.mark.parametrize("text", [
    "x = " + "-" * 2000 + "1\n",
    "import os\n\nclass A:\n    @decorate(" + " + ".join(["1"] * 2000) + ")\n"
    "    def f(self, a=" + "a." * 1600 + "b):\n        return 1\n",
    "def f():\n    if x:\n        pass\n    elif " + " or ".join(["x"] * 1600) + ": y = 1\n",
    "try:\n    pass\nexcept (" + " | ".join(["E"] * 1600) + "):\n    pass\n"
    "finally:\n    z = 1; w = " + "not " * 1600 + "1\n",
    "s = 'caf\u00e9'; t = 'na\u00efve'; u = " + " + ".join(["'\u00e9'"] * 1600) + "\n",
    "with a(x" + ".b" * 1600 + ") as c:\n    for i in x: print(i)\n",
    "x = {" + ", ".join(f"'k{i}': -{i}" for i in range(5000)) + "}\n\"\"\"" + "doc " * 500
    + "\"\"\"\n",
    "match x:\n    case 1:\n        y = " + "-" * 2000 + "1\n",
])
def test_the_nesting_scan_by_statement_agrees_with_the_whole_file_scan(text):
    """Scanning only the statements long enough to be too deep finds what the scan of the
    whole file finds, at the same line and column (non-ASCII before it included)."""
    import ast

    from celery_chain_lint.load.source import check_nesting, check_nesting_by_statement

    tree = ast.parse(text)
    assert _nesting_verdict(check_nesting_by_statement, text, tree) == \
        _nesting_verdict(check_nesting, text)


def test_the_nesting_scan_by_statement_agrees_on_real_code():
    import ast

    from celery_chain_lint.load.source import check_nesting, check_nesting_by_statement

    for path in (Path(__file__).parents[1] / "celery_chain_lint").rglob("*.py"):
        text = path.read_text()
        assert _nesting_verdict(check_nesting_by_statement, text, ast.parse(text)) is None
    deep = "x = " + " | ".join(["a.s(1)"] * 1600) + "\n"
    small_limit = {"max_depth": 200}
    for text in (deep, "def f():\n    return " + " + ".join(["1"] * 150) + "\n"):
        found = _nesting_verdict(lambda t, *tree: check_nesting_by_statement(t, *tree,
                                                                               **small_limit),
                                 text, ast.parse(text))
        assert found == _nesting_verdict(lambda t: check_nesting(t, **small_limit), text)


def test_a_generated_module_is_refused_before_any_parser_uses_its_memory(tmp_path):
    """A 20 MB generated module that mentions Celery: counted before ``ast`` or libcst sees it
    (it took 3.3 GB before being refused), so the process stays near 500 MB."""
    import subprocess
    import sys

    big = tmp_path / "generated.py"
    big.write_text("import celery\n" + "".join(
        f"VALUE_{i} = [{i}, 'x{i}', {{'k': {i}}}]\n" for i in range(400_000)))
    script = (
        "import resource, sys\n"
        "from celery_chain_lint.load.discovery import SourceFile\n"
        "from celery_chain_lint.load.reading import analyse_file\n"
        "facts, problem = analyse_file(SourceFile(sys.argv[1], 'generated', False), True)\n"
        "print(problem.code, problem.message)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    out = subprocess.run([sys.executable, "-c", script, str(big)], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0].startswith("CCL999 file too large to analyse: more than 200,000 tokens")
    assert int(out[1]) < 500, f"peak {out[1]} MB"
