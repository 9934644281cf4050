"""The facts cache: warm runs parse nothing and report the same; a changed file is re-read; a
corrupt or stale entry is ignored, never fatal."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from celery_chain_lint.load import cache as cache_module
from celery_chain_lint import engine
from celery_chain_lint.load import reading
from celery_chain_lint.load.cache import Cache
from celery_chain_lint.config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

PROJECT = {
    "pyproject.toml": "",
    "app/__init__.py": "",
    "app/jobs.py": """
        from celery import shared_task

        @shared_task
        def add(x, y):
            return x + y

        @shared_task
        def log(message):
            return message
    """,
    "app/flows.py": """
        from celery import chain
        from app.jobs import add, log

        def flow():
            return chain(add.s(1, 2), log.s("done"))
    """,
    "app/util.py": "import os\n\ndef f(x):\n    return os.sep * x\n",
}


def write(root: Path, files=PROJECT):
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        # Files written this very second could change again unseen within the clock's
        # resolution: the cache re-reads them (as git does). Age them.
        past = time.time() - 100
        os.utime(path, (past, past))


def run(root: Path, cache_dir: Path, paths=("app",), **settings):
    old = os.getcwd()
    os.chdir(root)
    try:
        settings.setdefault("select", ["CCL001"])  # other rules' evolution is not tested here
        report = engine.check(list(paths), Settings(cache_dir=str(cache_dir), **settings))
    finally:
        os.chdir(old)
    return [(f.path, f.span.line, f.code) for f in report.findings], report.stats


def test_warm_run_parses_nothing_and_reports_the_same(tmp_path):
    write(tmp_path)
    cold, cold_stats = run(tmp_path, tmp_path / "c")
    warm, warm_stats = run(tmp_path, tmp_path / "c")
    assert cold == warm == [(os.path.join("app", "flows.py"), 6, "CCL001")]
    assert cold_stats["parsed"] > 0
    assert warm_stats["parsed"] == 0 and warm_stats["read"] == 0
    # Without the whole-run shortcut, facts come from the cache too.
    os.utime(tmp_path / "app" / "util.py", ns=(0, 0))  # stat changed, content did not
    again, stats = run(tmp_path, tmp_path / "c")
    assert again == cold
    assert stats["parsed"] == 0 and stats["read"] == 1


def test_a_changed_file_is_reanalysed(tmp_path):
    write(tmp_path)
    run(tmp_path, tmp_path / "c")
    flows = tmp_path / "app" / "flows.py"
    flows.write_text(flows.read_text().replace('log.s("done")', 'log.si("done")'))
    os.utime(flows, ns=(10**9, 10**9))  # a different mtime, long ago
    found, stats = run(tmp_path, tmp_path / "c")
    assert found == []
    assert stats["parsed"] == 1


def test_cache_directory_is_ignored_by_git_and_tagged(tmp_path):
    write(tmp_path)
    run(tmp_path, tmp_path / "c")
    assert (tmp_path / "c" / ".gitignore").read_text().strip().endswith("*")
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert not list((tmp_path / "c").rglob(".tmp-*"))  # atomic writes leave nothing behind


def test_corrupt_entries_are_ignored(tmp_path):
    write(tmp_path)
    expected, _ = run(tmp_path, tmp_path / "c")
    entries = [p for p in (tmp_path / "c").rglob("*") if p.is_file() and p.name not in (
        ".gitignore", "CACHEDIR.TAG")]
    assert entries
    for number, entry in enumerate(entries):
        entry.write_bytes(b"\x80\x04garbage" if number % 2 else b"")
    found, stats = run(tmp_path, tmp_path / "c")
    assert found == expected
    assert stats["parsed"] > 0  # recomputed
    found, _ = run(tmp_path, tmp_path / "c")  # and rewritten
    assert found == expected


def test_wrong_type_in_an_entry_is_ignored(tmp_path):
    cache = Cache(str(tmp_path / "c"))
    cache.put("k", ("facts", "not facts"))
    assert cache.get("k") == ("facts", "not facts")
    write(tmp_path)
    found, _ = run(tmp_path, tmp_path / "c")
    assert found == [(os.path.join("app", "flows.py"), 6, "CCL001")]


def test_a_new_facts_format_never_reads_old_entries(tmp_path, monkeypatch):
    write(tmp_path)
    run(tmp_path, tmp_path / "c")
    before = Cache(str(tmp_path / "c")).root
    import celery_chain_lint

    monkeypatch.setattr(celery_chain_lint, "__version__", "another version")
    after = Cache(str(tmp_path / "c")).root
    assert before != after
    found, stats = run(tmp_path, tmp_path / "c")
    assert stats["parsed"] > 0 and stats["read"] > 0


def test_configuration_is_part_of_the_key(tmp_path):
    write(tmp_path)
    run(tmp_path, tmp_path / "c")
    found, stats = run(tmp_path, tmp_path / "c", ignore=["CCL001"])
    assert found == []
    assert "results_cached" not in stats


def test_no_cache_writes_nothing_and_cache_dir_is_honoured(tmp_path):
    write(tmp_path)
    base = [sys.executable, "-m", "celery_chain_lint", "check", "app"]
    result = subprocess.run(base + ["--no-cache"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert not (tmp_path / ".celery_chain_lint_cache").exists()
    result = subprocess.run(base + ["--cache-dir", "elsewhere"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "elsewhere" / ".gitignore").exists()
    assert not (tmp_path / ".celery_chain_lint_cache").exists()
    result = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True)
    assert (tmp_path / ".celery_chain_lint_cache" / ".gitignore").exists()


def test_in_memory_content_is_never_served_from_the_cache(tmp_path):
    write(tmp_path)
    run(tmp_path, tmp_path / "c")
    flows = os.path.abspath(tmp_path / "app" / "flows.py")
    fixed = (tmp_path / "app" / "flows.py").read_bytes().replace(b'log.s("done")', b'log.si("done")')
    found, _ = run(tmp_path, tmp_path / "c", overrides={flows: fixed})
    assert found == []
    found, _ = run(tmp_path, tmp_path / "c")  # the file on disk still has the finding
    assert found == [(os.path.join("app", "flows.py"), 6, "CCL001")]


def test_a_planted_cache_entry_runs_nothing(tmp_path):
    """A cache directory can come with the analysed code (a cloned repository): loading it
    must not execute anything, as plain unpickling of a crafted entry would."""
    import pickle

    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cache = Cache(str(tmp_path / "c"), config=repr([]))  # as the pipeline keys it
    path = os.path.join(cache.root, "facts", "ab", "abcd")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        pickle.dump(Exploit(), handle)
    assert cache.get("abcd") is None
    assert not marker.exists()
    with open(os.path.join(cache.root, cache_module.MANIFEST), "wb") as handle:
        pickle.dump(Exploit(), handle)
    write(tmp_path)
    found, _ = run(tmp_path, tmp_path / "c")
    assert found == [(os.path.join("app", "flows.py"), 6, "CCL001")]
    assert not marker.exists()


def test_the_cache_format_covers_every_module_that_makes_a_files_facts():
    """A cached entry is only as fresh as the sources it is keyed by: every module of ours that
    runs while one file's facts are made (both tiers, bodies elided and read back) is hashed."""
    script = textwrap.dedent("""
        import sys
        from celery_chain_lint.load import reading
        from celery_chain_lint.load.discovery import SourceFile
        loaded = set(sys.modules) - {"celery_chain_lint.load.reading"}  # the settings, the findings' types
        path = sys.argv[1]
        facts, problem = reading.analyse_file(SourceFile(path, "m", False), True)
        assert facts is not None and problem is None, problem
        from celery_chain_lint.load.bodies import definitions_facts, with_bodies_on_demand
        from celery_chain_lint.load.source import run_deep
        with_bodies_on_demand(facts, lambda function: None)
        run_deep(definitions_facts, open(path, "rb").read(), path, "m", False)
        print("\\n".join(sorted(m for m in set(sys.modules) - loaded
                              if m.startswith("celery_chain_lint."))))
    """)
    fixture = ROOT / "fixtures" / "shop" / "tasks" / "billing.py"
    modules = subprocess.run([sys.executable, "-c", script, str(fixture)], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout.split()
    package = ROOT / "celery_chain_lint"
    used = set()
    for module in modules:
        path = package.joinpath(*module.split(".")[1:])
        source = path.with_suffix(".py") if path.with_suffix(".py").exists() \
            else path / "__init__.py"
        used.add(source.relative_to(package).as_posix())
    assert {"facts/extract.py", "facts/roots.py", "load/bodies.py", "load/reading.py"} <= used
    # __init__ files hold no code that makes facts (load/__init__.py opens projects).
    assert {u for u in used if not u.endswith("__init__.py")} <= set(cache_module.FORMAT_SOURCES)
