"""Builds a Project from source snippets written into a temporary tree (for unit tests)."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Dict

from celery_chain_lint import engine
from celery_chain_lint.load.discovery import discover
from celery_chain_lint.load.reading import analyse_file
from celery_chain_lint.index.project import Project
from celery_chain_lint.config.settings import Settings


# A Django layout whose settings module never mentions Celery: the app reads it by name (the
# project's only ``settings`` module), and its CELERY_TASK_IGNORE_RESULT decides CCL008.
DJANGO_SETTINGS_READ_BY_NAME = {
    "site/__init__.py": "",
    "site/celery.py": """
        from celery import Celery
        app = Celery("site", backend="redis://127.0.0.1:6379/1")
        app.config_from_object("django.conf:settings", namespace="CELERY")
    """,
    "site/settings.py": "DEBUG = False\nCELERY_TASK_IGNORE_RESULT = True\n",
    "site/tasks.py": """
        from celery import chord
        from site.celery import app

        @app.task
        def fetch(x):
            return x

        @app.task
        def merge(values):
            return values

        def run():
            return chord([fetch.s(1), fetch.s(2)], merge.s()).delay()
    """,
}


def write(root: Path, files: Dict[str, str]) -> None:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def findings(paths, prefilter: bool, cwd: Path):
    """(the findings as JSON, the pipeline's stats) of ``check`` run from ``cwd``, no cache."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        report = engine.check(paths, Settings(use_cache=False), prefilter=prefilter)
    finally:
        os.chdir(old)
    return [f.to_json() for f in report.findings], report.stats


def make_project(root: Path, files: Dict[str, str]) -> Project:
    write(root, files)
    modules = []
    for source in discover([str(root)]):
        facts, problem = analyse_file(source)
        assert problem is None, problem
        modules.append(facts)
    return Project(modules)


def tasks_by_display(project: Project):
    return {task.display: task for task in project.all_tasks}
