"""The task index finds Celery tasks across modules without importing them, and only them."""
from __future__ import annotations

from celery_chain_lint.facts.model import POSITIONAL_OR_KEYWORD
from projects import make_project, tasks_by_display

APP = "from celery import Celery\napp = Celery('proj')\n"


def test_app_task_through_an_aliased_import_from_another_module(tmp_path):
    project = make_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": APP,
        "proj/tasks.py": """
            from proj.celery import app as celery_app

            @celery_app.task(name="custom.add", bind=True, max_retries=5)
            def add(self, x, y=1):
                return x + y

            @celery_app.task
            def plain(a):
                return a
        """,
    })
    tasks = tasks_by_display(project)
    assert tasks["add"].name == "custom.add"
    assert tasks["add"].bind is True
    assert [p.name for p in tasks["add"].params.items] == ["x", "y"]
    assert tasks["add"].literal_option("max_retries") == 5
    assert tasks["plain"].name == "proj.tasks.plain"


def test_shared_task_current_app_and_wrapping_decorators(tmp_path):
    project = make_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/deco.py": """
            from celery import shared_task

            def retrying_task(**kw):
                return shared_task(autoretry_for=(ConnectionError,), **kw)
        """,
        "pkg/jobs.py": """
            from celery import shared_task as job, current_app
            from .deco import retrying_task

            @job
            def one(a): ...

            @current_app.task()
            def two(a, b): ...

            @retrying_task(max_retries=3)
            def three(a): ...
        """,
    })
    tasks = tasks_by_display(project)
    assert set(tasks) == {"one", "two", "three"}
    assert tasks["three"].option("autoretry_for") is not None
    assert tasks["three"].literal_option("max_retries") == 3


def test_other_frameworks_task_decorators_are_not_celery(tmp_path):
    project = make_project(tmp_path, {
        "flows.py": """
            from prefect import task
            from airflow.decorators import task as af_task
            import dramatiq
            from invoke import task as inv

            @task
            def a(x): ...

            @af_task()
            def b(x): ...

            @dramatiq.actor
            def c(x): ...

            @inv
            def d(c): ...
        """,
    })
    assert project.all_tasks == []


def test_class_based_task_registered_on_the_app(tmp_path):
    project = make_project(tmp_path, {
        "proj/__init__.py": "",
        "proj/celery.py": APP,
        "proj/ledger.py": """
            from celery import Task
            from proj.celery import app

            class Base(Task):
                def run(self, period, fmt="csv"):
                    ...

            class Export(Base):
                name = "ledger.export"

            export = app.register_task(Export())
        """,
        "proj/flow.py": """
            from proj.ledger import export
            export.s("2024", "pdf", "a4")
        """,
    })
    tasks = tasks_by_display(project)
    assert tasks["Export"].name == "ledger.export"
    assert [p.name for p in tasks["Export"].params.items] == ["period", "fmt"]
    assert [p.code for p in _problems(project)] == ["CCL002"]


def test_reexport_without_the_word_task_and_relative_imports(tmp_path):
    project = make_project(tmp_path, {
        "shop/__init__.py": "",
        "shop/celery.py": APP,
        "shop/work/__init__.py": "from .impl import charge as charge_it\n",
        "shop/work/impl.py": """
            from ..celery import app

            @app.task
            def charge(order_id, amount):
                ...
        """,
        "shop/flows/__init__.py": "",
        "shop/flows/a.py": """
            from ..work import charge_it
            from .. import work
            import shop.work as w

            def run():
                charge_it.delay(1)
                work.charge_it.delay(1)
                w.charge_it.delay(1)
        """,
    })
    assert len(_problems(project)) == 3


def test_local_names_shadow_tasks(tmp_path):
    project = make_project(tmp_path, {
        "p/__init__.py": "",
        "p/celery.py": APP,
        "p/t.py": "from p.celery import app\n@app.task\ndef add(x, y): ...\n",
        "p/use.py": """
            from p.t import add

            def with_parameter(add):
                add.delay(1)

            def with_local_import():
                from p.t import add as plus
                plus.delay(1)

            def add(a):
                ...

            add.delay(1)
        """,
    })
    problems = _problems(project)
    assert [(p.span.line, p.code) for p in problems] == [(9, "CCL002")]


def test_duplicate_registered_names_are_not_resolved_by_name(tmp_path):
    project = make_project(tmp_path, {
        "p/__init__.py": "",
        "p/celery.py": APP,
        "p/a.py": "from p.celery import app\n@app.task(name='dup')\ndef f(x): ...\n",
        "p/b.py": "from p.celery import app\n@app.task(name='dup')\ndef g(x, y): ...\n",
        "p/use.py": "from celery import signature\nsignature('dup', args=(1, 2, 3)).delay()\n",
    })
    assert project.tasks.by_name("dup") is None
    assert _problems(project) == []


def test_star_imports_and_import_cycles_resolve(tmp_path):
    project = make_project(tmp_path, {
        "c/__init__.py": "",
        "c/celery.py": APP,
        "c/a.py": "from c.celery import app\nfrom c.b import *\n@app.task\ndef f(x): ...\n",
        "c/b.py": "from c.a import *\n",
        "c/use.py": "from c.b import f\nf.delay()\n",
    })
    assert [p.code for p in _problems(project)] == ["CCL002"]


def test_bind_true_drops_self_and_keyword_only_params_are_kept(tmp_path):
    project = make_project(tmp_path, {
        "m.py": APP + "@app.task(bind=True)\ndef t(self, a, *, b=1): ...\n",
    })
    params = tasks_by_display(project)["t"].params.items
    assert [(p.name, p.kind) for p in params][0] == ("a", POSITIONAL_OR_KEYWORD)
    assert len(params) == 2


def _problems(project):
    from celery_chain_lint.engine import run_rules
    from celery_chain_lint.rules import ALL_RULES

    return [f for f in run_rules(project, ALL_RULES) if f.code in ("CCL001", "CCL002")]


def test_module_level_conditional_bindings(tmp_path):
    project = make_project(tmp_path, {
        "p/__init__.py": "",
        "p/celery.py": APP,
        "p/t.py": """
            from typing import TYPE_CHECKING
            from p.celery import app
            try:
                from celery import shared_task
            except ImportError:
                shared_task = None
            if TYPE_CHECKING:
                from p.celery import app as typed_app

            if True:
                @app.task
                def in_if(x): ...

            @shared_task
            def ambiguous_decorator(x): ...
        """,
        "p/use.py": "from p.t import in_if, ambiguous_decorator\n"
                    "in_if.delay()\nambiguous_decorator.delay()\n",
    })
    assert set(tasks_by_display(project)) == {"in_if"}
    assert [(p.span.line, p.code) for p in _problems(project)] == [(2, "CCL002")]
