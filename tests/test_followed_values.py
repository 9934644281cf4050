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
