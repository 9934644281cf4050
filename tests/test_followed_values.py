"""Issue 16: workflows followed through the values code builds (composition, helpers, names,
decorators), each with a near miss; and findings located in the file their span is in."""
from __future__ import annotations

import textwrap
from pathlib import Path

from projects import findings, write


def _found(tmp_path, files, prefilter=True):
    write(tmp_path, files)
    (tmp_path / "pyproject.toml").write_text("")
    found, _ = findings(["."], prefilter, tmp_path)
    return {(Path(f["path"]).as_posix(), f["line"], f["code"]) for f in found}, found


TASKS = textwrap.dedent("""
    from celery import Celery
    app = Celery("p", broker="memory://", backend="redis://")

    @app.task
    def add(x, y):
        return x + y

    @app.task
    def log_done(message):
        return message
""")


def test_a_canvas_of_another_module_is_reported_in_its_own_file(tmp_path):
    """Before issue 16 the span of a signature built in ``p/tasks.py`` was reported (and fixed)
    in the file that used the variable."""
    found, raw = _found(tmp_path, {
        "p/__init__.py": "",
        "p/tasks.py": TASKS + '\nbase = add.s(1, 2) | log_done.s("x")\n',
        "p/flows.py": "from p.tasks import add, base\n\n(base | add.s(3)).delay()\n",
    })
    assert found == {("p/tasks.py", 13, "CCL001")}
    (finding,) = raw
    assert (finding["line"], finding["column"]) == (13, 22)  # the fix edits that file too


def test_a_helper_of_another_module_is_reported_in_its_file_without_a_fix(tmp_path):
    found, raw = _found(tmp_path, {
        "p/__init__.py": "",
        "p/tasks.py": TASKS,
        "p/helpers.py": "from p.tasks import add\n\n\ndef stage(x):\n    return add.s(x)\n",
        "p/flows.py": ("from celery import chain\nfrom p.helpers import stage\n"
                       "from p.tasks import add, log_done\n\n"
                       "chain(add.s(1, 2), stage(3)).delay()\n"
                       "chain(log_done.s('a'), stage(3), log_done.s()).delay()\n"),
    })
    # add(<result>, 3) binds; in the second chain log_done('a') then add(<result>, 3): fine;
    # log_done(<result of add>) fine. Then a helper whose signature cannot take the result:
    assert found == set()
    found, raw = _found(tmp_path / "b", {
        "p/__init__.py": "",
        "p/tasks.py": TASKS,
        "p/helpers.py": "from p.tasks import log_done\n\n\ndef stage(x):\n"
                        "    return log_done.s(x)\n",
        "p/flows.py": ("from celery import chain\nfrom p.helpers import stage\n"
                       "from p.tasks import add\n\nchain(add.s(1, 2), stage('x')).delay()\n"),
    })
    assert found == {("p/helpers.py", 5, "CCL001")}
    assert raw[0]["fix"] is None  # the helper's other callers may rely on it as written


def test_a_missing_task_name_is_not_guessed_through_a_star_import(tmp_path):
    files = {
        "p/__init__.py": "",
        "p/tasks.py": TASKS,
        "p/more.py": "from p.tasks import *\n",
        "p/flows.py": "from p import more, tasks\n\ntasks.gone.delay(1)\nmore.gone.delay(1)\n",
    }
    found, _ = _found(tmp_path, files)
    assert found == {("p/flows.py", 3, "CCL015")}
    with_filter, _ = findings(["."], True, tmp_path)
    without, _ = findings(["."], False, tmp_path)
    assert with_filter == without


def test_send_task_to_a_name_not_in_the_code_says_nothing(tmp_path):
    found, _ = _found(tmp_path, {
        "p/__init__.py": "",
        "p/tasks.py": TASKS + ('\n\ndef send():\n'
                               '    app.send_task("billing.invoice", args=(1, 2, 3))\n'
                               '    app.send_task("p.tasks.add", args=(1,))\n'),
    })
    assert found == {("p/tasks.py", 16, "CCL002")}
