"""The load layer: from the paths a user gives to analysed projects, read through the cache.

``load_projects(paths, settings)`` is the one entry point. It finds the files (discovery.py),
adds the rest of each project they belong to as context, splits the tree into projects (a
module namespace under one configuration: ``units.py``), and opens each one (pipeline.py:
the pre-filter, body eliding, parsing in parallel, the cache). Nothing here imports the rules,
the reporters or the engine: the engine calls this once and runs the rules on what it gets.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from celery_chain_lint.config.files import nearest_config, settings_for
from celery_chain_lint.config.settings import Settings
from celery_chain_lint.findings import Finding
from celery_chain_lint.load.atomic import write_atomically
from celery_chain_lint.load.cache import Cache, content_hash
from celery_chain_lint.load.discovery import PathError, SourceFile, discover, with_overrides
from celery_chain_lint.load.namespaces import (adopt_namespace_packages,
                                               drop_accidental_top_packages, split_namespaces)
from celery_chain_lint.load.pathfilter import PerFileIgnores
from celery_chain_lint.load.pathfilter import build as path_filter
from celery_chain_lint.load.source import (MAX_FILE_BYTES, SourceError, decode, parse_text,
                                           run_deep, split_lines)

# What the layers above use of this one; they import nothing else from it.
__all__ = ["MAX_FILE_BYTES", "Loaded", "LoadedProject", "PathError", "PerFileIgnores",
           "SourceError", "SourceFile", "content_hash", "decode", "discover", "load_project",
           "load_projects", "parse_text", "path_filter", "run_deep", "split_lines",
           "stdin_context", "write_atomically"]

if TYPE_CHECKING:
    from celery_chain_lint.index.project import Project
    from celery_chain_lint.load.pipeline import Analysis, _File


@dataclass
class LoadedProject:
    """One project of the run, its files stat'ed and compared with the cache. ``project()``
    reads what the cache does not hold and builds the model (the whole analyser: a run whose
    findings are cached never asks for it)."""
    settings: Settings
    analysis: "Analysis"
    _built: Optional[Tuple["Project", List[Finding]]] = field(default=None, repr=False)

    @property
    def sources(self) -> List[SourceFile]:
        """The files this project reports on (the others are context: read for names)."""
        return [f.source for f in self.analysis.files if f.reported]

    def results_key(self, settings_key: str) -> Optional[str]:
        return self.analysis.results_key(settings_key)

    def cached_results(self, key: Optional[str]) -> Optional[Tuple[List[Finding], object]]:
        return self.analysis.cached_results(key)

    def store_results(self, key: Optional[str], findings: List[Finding],
                      extra: object = None) -> None:
        self.analysis.store_results(key, findings, extra)

    def project(self) -> Tuple["Project", List[Finding]]:
        """The project model, and the files of ``sources`` that could not be analysed."""
        if self._built is None:
            self._built = self.analysis.analyse()
        return self._built

    @property
    def root(self) -> str:
        """Where the modules it reports on are imported from (the first, if several)."""
        from celery_chain_lint.load.namespaces import import_root

        reported = [f for f in self.analysis.files if f.reported]
        return import_root(reported[0]) if reported else ""

    @property
    def stats(self) -> Dict[str, int]:
        return self.analysis.stats

    def celery_files(self) -> int:
        """The reported files the pre-filter found related to Celery (an import of it, a
        canvas call, a task decorator...; unreadable files count): none means a clean result
        says nothing about Celery code."""
        return sum(1 for f in self.analysis.files if f.reported and f.seed)

    def digests(self) -> Dict[str, str]:
        return {f.abspath: f.digest for f in self.analysis.files if f.digest}


class Loaded:
    """Every project of a run; close() releases what the pipeline keeps (its parser child)."""

    def __init__(self, sources: List[SourceFile], projects: List[LoadedProject],
                 scratch: Optional[str] = None):
        self.sources = sources
        self.projects = projects
        self.scratch = scratch  # a cache for this run only (--no-cache, several projects)

    def close(self) -> None:
        for loaded in self.projects:
            loaded.analysis.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self) -> "Loaded":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def discover_options(settings: Settings) -> dict:
    return dict(excludes=set(settings.exclude) | set(settings.extend_exclude),
                source_roots=settings.src, path_filter=path_filter(settings))


def load_projects(paths: Sequence[str], settings: Settings, *, prefilter: bool = True,
                  jobs: Optional[int] = None,
                  warm_up: Callable[[], None] = lambda: None,
                  reads_task_methods_on_functions: Callable[[Settings], bool] = lambda s: True
                  ) -> Loaded:
    """The projects ``paths`` belong to, each opened; findings are for ``paths`` only, names
    resolve against the whole project of each file (``pipeline.project_sources``).
    ``warm_up`` runs while parsers work (the engine imports the rules then);
    ``reads_task_methods_on_functions(settings)``: whether the rules those settings select
    read them (``Rule``'s attribute), asked when a project is analysed."""
    reads = dict(reads_task_methods_on_functions=reads_task_methods_on_functions)
    from celery_chain_lint.load.pipeline import Analysis, fork_parser_child, project_sources

    first = Analysis(settings, prefilter=prefilter, jobs=jobs, warm_up=warm_up, **reads)
    # The extractor is imported now, in a child, in case a few files changed (ParserChild).
    first.child = fork_parser_child(first)
    try:
        options = discover_options(settings)
        sources = discover(paths, force_exclude=settings.force_exclude, **options)
        sources = with_overrides(sources, settings.overrides, settings.src)
        first.prepare(sources, project_sources(paths, sources, options))
        if not settings.src:  # configured source roots name the modules as the user says
            drop_accidental_top_packages(first.files)
            adopt_namespace_packages(first.files)
        units = [(configured, files) for configured, group in by_configuration(first.files, settings)
                 for files in split_namespaces(group)]
        scratch = None
        if first.cache is None and len(units) > 1:
            # Without the cache, the projects of one tree still share their files' facts.
            scratch = tempfile.mkdtemp(prefix="ccl-run-")
            first.cache = Cache(scratch, config=repr(sorted(settings.src)))
        projects = []
        for configured, files in units:
            analysis = first if not projects else Analysis(
                configured, prefilter=prefilter, jobs=jobs, warm_up=warm_up, cache=first.cache,
                **reads)
            analysis.adopt(files)
            projects.append(LoadedProject(configured, analysis))
    except BaseException:
        first.close()
        raise
    return Loaded(sources, projects, scratch)


def by_configuration(files: List["_File"], settings: Settings) -> List[Tuple[Settings, List]]:
    """The files under each configuration file: each file takes the nearest one walking up
    (as ruff), with the command-line flags on top; the others are its context."""
    if settings.flags is None:
        return [(settings, files)]
    memo: Dict[str, Optional[str]] = {}
    nearest = {id(f): nearest_config(os.path.dirname(f.abspath), memo)
               for f in files if f.reported}
    configs = sorted(set(nearest.values()), key=lambda path: path or "")
    if configs == [settings.config_path]:
        return [(settings, files)]
    groups = []
    for config in configs:
        configured = settings if config == settings.config_path else settings_for(config, settings)
        groups.append((configured, [f if nearest.get(id(f), config) == config or not f.reported
                                    else replace(f, reported=False) for f in files]))
    return groups


def load_project(paths: Sequence[str], settings: Optional[Settings] = None) -> "Project":
    """The project model of ``paths`` (the first project, when the tree holds several)."""
    with load_projects(paths, settings or Settings()) as loaded:
        return loaded.projects[0].project()[0]


def stdin_context(stdin_filename: str, settings) -> List[str]:
    """What to analyse with a file read from standard input, for its imports to resolve: the
    configured source roots, else the top package holding it, else its directory."""
    if settings.src:
        return [root for root in settings.src if os.path.isdir(root)]
    directory = os.path.dirname(os.path.abspath(stdin_filename))
    if not os.path.isdir(directory):
        return []
    top = None
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        top = directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return [_relative(top or directory)]


def _relative(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
