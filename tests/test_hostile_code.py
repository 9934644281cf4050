"""Tasks and workflows written in unusual but valid ways (issue 7): no crash, positions inside the
files, exit 1, and the plain bug each file ends with is still found."""
from __future__ import annotations

import textwrap

import pytest

from hostile_helpers import BUG, TASKS, assert_positions_inside, by_path, check_json, write_files

BUG_LINE = f"{BUG}\n"
HEADER = "from celery import chain, group, chord, shared_task, Celery, signature\n" \
         "from tasks import add, log_done\n"

FILES = {
    "decorators.py": HEADER + textwrap.dedent("""\
        import functools
        app = Celery("odd")
        registry = {"task": app.task}
        options = {"bind": True}
        flag = True


        @(lambda f: f)
        def lam(x):
            return x


        @registry["task"]
        def from_dict(x):
            return x


        @app.task(**options)
        def splat_options(self, x):
            return x


        @app.task(bind=flag)
        def unknown_bind(self, x):
            return x


        @(app.task if flag else shared_task)
        def conditional_decorator(x):
            return x


        @app.task()
        @functools.lru_cache(maxsize=None)
        def stacked(x):
            return x


        @app.task
        async def coroutine(x):
            return x


        @shared_task(name=f"odd.{flag}")
        def computed_name(x):
            return x


        @shared_task(base=None, bind=True, autoretry_for=(Exception,), max_retries=None)
        def many_options(self, x, *args, key=None, **kwargs):
            return x


        workflow = (lam.s(1) | from_dict.s(2) | splat_options.s(3) | unknown_bind.s(4)
                    | conditional_decorator.s(5) | stacked.s(6) | coroutine.s(7)
                    | computed_name.s(8) | many_options.s(9, 10, key=11))
        workflow.delay()
        """) + BUG_LINE,
    "conditional.py": HEADER + textwrap.dedent("""\
        import os

        if os.environ.get("X"):
            @shared_task
            def maybe(x, y):
                return x
        else:
            @shared_task
            def maybe(x):
                return x

        try:
            @shared_task
            def guarded(x):
                return x
        except Exception:
            guarded = None


        def factory():
            @shared_task
            def inner(x, y):
                return x + y

            return chain(inner.s(1, 2), inner.s(3))


        class Holder:
            @shared_task
            def method_task(x):
                return x

            flow = chain(add.s(1, 2), log_done.s("in a class body"))


        for _ in range(2):
            @shared_task
            def looped(x):
                return x

        maybe.s(1, 2).delay()
        guarded.s(1).delay()
        (looped.s(1) | looped.s()).delay()
        """) + BUG_LINE,
    "star_a.py": "from star_b import *\nfrom tasks import *\nfrom celery import *\n"
                 "chain(add.s(1, 2), log_done.s('done')).delay()\n" + BUG_LINE,
    "star_b.py": "from star_a import *\nfrom celery import chain\nfrom tasks import add, log_done\n"
                 + BUG_LINE,
    "cycle_a.py": "from celery import chain, shared_task\nfrom cycle_b import second\n\n\n"
                  "@shared_task\ndef first(x):\n    return x\n\n\n"
                  "chain(first.s(1), second.s(2, 3)).delay()\n"
                  "from tasks import add, log_done\n" + BUG_LINE,
    "cycle_b.py": "from celery import chain, shared_task\nfrom cycle_a import first\n\n\n"
                  "@shared_task\ndef second(x, y):\n    return x\n\n\n"
                  "chain(second.s(1, 2), first.s(2)).delay()\n"
                  "from tasks import add, log_done\n" + BUG_LINE,
    "dup_one.py": "from celery import shared_task\n\n\n@shared_task(name='dup')\n"
                  "def one(x):\n    return x\n",
    "dup_two.py": "from celery import shared_task\n\n\n@shared_task(name='dup')\n"
                  "def two(x, y):\n    return x\n",
    "dup_use.py": HEADER + "signature('dup', args=(1,)).delay()\n"
                           "signature('dup', args=(1, 2)).delay()\n"
                           "chain(signature('dup', args=(1,)), signature('dup')).delay()\n"
                  + BUG_LINE,
    # A module and a package with the same name: Python imports the package.
    "same.py": "from celery import shared_task\n\n\n@shared_task\ndef shared(x, y, z):\n"
               "    return x\n",
    "same/__init__.py": "from celery import shared_task\n\n\n@shared_task\ndef shared(x):\n"
                        "    return x\n",
    "same_use.py": HEADER + "from same import shared\n\nchain(add.s(1, 2), shared.s()).delay()\n"
                   + BUG_LINE,
    "self_import.py": "from self_import import thing\nthing = thing\nimport self_import\n"
                      "self_import.thing.s() | self_import.thing.s()\n"
                      "from celery import chain\nfrom tasks import add, log_done\n" + BUG_LINE,
    "dynamic.py": HEADER + textwrap.dedent("""\
        import importlib
        tasks = importlib.import_module("tasks")
        name = "add"
        getattr(tasks, name).s(1, 2).delay()
        globals()["add"].s(1).delay()
        sigs = [add.s(i) for i in range(3)]
        sigs.append(log_done.s())
        chain(*sigs).delay()
        group(add.s(i, i) for i in range(10)).delay()
        chord((add.s(i, i) for i in range(3)), log_done.s()).delay()
        x = add.s(1, 2)
        x |= log_done.s()
        del x
        lambda: chain(add.s(1, 2), log_done.s("lambda")).delay()
        [chain(add.s(1, 2), log_done.s("comprehension")) for _ in range(2)]
        match name:
            case "add":
                chain(add.s(1, 2), log_done.s("match")).delay()
            case _:
                pass
        """) + BUG_LINE,
}
EXPECT_BUG = sorted(name for name, text in FILES.items() if text.endswith(BUG_LINE))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    write_files(root, {"pyproject.toml": "", "tasks.py": TASKS, **FILES})
    code, findings, stderr = check_json(".", cwd=root, timeout=600)
    return root, code, findings


def test_no_crash_and_positions_inside(run):
    root, code, findings = run
    assert code == 1
    assert_positions_inside(findings, root)
    assert [f for f in findings if f["code"] == "CCL999"] == []


@pytest.mark.parametrize("name", EXPECT_BUG)
def test_the_plain_bug_is_still_found(run, name):
    root, _, findings = run
    lines = (root / name).read_text().splitlines()
    line = max(i for i, text in enumerate(lines, 1) if text == BUG)
    column = lines[line - 1].index("log_done.s") + 1
    found = by_path(findings).get(name, [])
    assert any(f["code"] == "CCL001" and (f["line"], f["column"]) == (line, column)
               for f in found), found


def test_the_package_wins_over_the_module_of_the_same_name(run):
    """``same/`` and ``same.py``: Python imports the package, whose ``shared(x)`` takes add's
    result; the module's ``shared(x, y, z)`` would not."""
    _, _, findings = run
    lines = FILES["same_use.py"].splitlines()
    line = lines.index("chain(add.s(1, 2), shared.s()).delay()") + 1
    assert not [f for f in by_path(findings).get("same_use.py", []) if f["line"] == line]


def test_two_tasks_registered_under_one_name_are_not_guessed(run):
    """``signature('dup', ...)`` could be either task: no finding claims to know which."""
    _, _, findings = run
    lines = FILES["dup_use.py"].splitlines()
    dup_lines = {i for i, text in enumerate(lines, 1) if "'dup'" in text}
    assert not [f for f in by_path(findings).get("dup_use.py", []) if f["line"] in dup_lines]
