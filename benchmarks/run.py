#!/usr/bin/env python
"""The performance benchmark of celery-chain-lint, against ruff and flake8 on the same tree.

    python benchmarks/run.py                 # real code present on every machine (see below)
    python benchmarks/run.py path/to/code    # any directory
    python benchmarks/run.py --json out.json --skip-linearity --skip-dense
    python benchmarks/run.py --dense-source path/to/celery-checkout
    python benchmarks/run.py --apps          # also real Celery applications (~250 MB download)
    python benchmarks/run.py --apps-dir DIR  # the same on each subdirectory of DIR (offline)

By default the tree is the running Python's standard library and the installed celery, kombu
and (when installed) django packages, copied (``.py`` files only) into a temporary directory.
Reported: files, lines, wall times of a cold run (empty cache), a warm run (nothing changed),
a run after one file changed, a pre-commit run (only that file given, warm cache), the peak
memory of the largest process (``getrusage(RUSAGE_CHILDREN)``), lines per second, and the same
tree under ``ruff check --select ALL --no-cache`` and ``flake8 -j 2`` with the ratios. Then the
linearity check (the tree twice: at most 2.2x the time) and Celery-dense code against flake8,
on two trees: "sources", the installed celery package, and "sources and tests", the ``celery/``
and ``t/`` directories of Celery's sdist for the installed version (the wheel has no tests;
fetched with ``pip download``, reported as not available when that fails) or of the checkout
given with ``--dense-source``. ``--apps`` adds real Celery applications (the default tree holds
little application code), each its own tree: the ``APPS`` below, fetched with ``pip download``
(a wheel when there is one, else the sdist; one that fails is reported as not available), or
with ``--apps-dir DIR`` each subdirectory of DIR. Per app: files, lines, our cold run, ruff ALL
and flake8 -j 2 taken in turn (best of ``--repeat`` each), ours/ruff and flake8/ours.
``--skip-competitors`` leaves out ruff and flake8 from the main tree and the apps (not from the
Celery-dense trees). ruff and flake8 are installed into this environment when missing
(``pip install -e '.[bench]'`` does it beforehand).

The tool measured is a copy of the package taken at the start, byte-compiled there (``python -m
compileall``, into its ``__pycache__``, as ``pip install`` does) before any timing, and every
timed run may use and write bytecode (``PYTHONDONTWRITEBYTECODE`` is removed from its
environment): an environment setting that variable, with the package installed editable, would
otherwise time the compilation of the whole analyser at every run.

Targets (issue 6): cold <= ruff ALL and >= 10x faster than flake8 -j 2; warm <= 0.3 s; one
file changed <= 0.6 s; pre-commit <= 0.6 s; peak memory <= 300 MB; linear; Celery-dense code
>= 3x faster than flake8 -j 2; each app: ours/ruff <= 1.0 and flake8/ours >= 10x. Machine load
changes every number: it is printed with them.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", ".git", ".venv", "venv"}
# Django and Flask applications using Celery, as users run us (pip specs: the wheel where there
# is one, else the sdist)
APPS = ("pretix==2026.8.0", "weblate==5.14.3", "indico==3.2.9", "mayan-edms==4.12.2",
        "apache-superset==6.1.0")


# ---- the tree ----


def copy_python_files(source: Path, target: Path) -> None:
    for directory, subdirs, names in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        relative = Path(directory).relative_to(source)
        for name in names:
            if name.endswith(".py"):
                destination = target / relative / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.join(directory, name), destination)


def installed_package(name: str):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_tree(workdir: Path) -> Path:
    tree = workdir / "tree"
    copy_python_files(Path(sysconfig.get_paths()["stdlib"]), tree / "stdlib")
    for name in ("celery", "kombu", "django"):
        location = installed_package(name)
        if location is not None:
            copy_python_files(location, tree / name)
    return tree


def count(tree: Path):
    files = lines = 0
    for directory, subdirs, names in os.walk(tree):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and d != ".celery_chain_lint_cache"]
        for name in names:
            if name.endswith(".py"):
                files += 1
                with open(os.path.join(directory, name), "rb") as handle:
                    lines += handle.read().count(b"\n")
    return files, lines


# ---- running things ----


FROZEN: list = []  # the directory holding the copy of the tool being measured


def environment():
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: compiled once, not at every run
    if FROZEN:
        env["PYTHONPATH"] = os.pathsep.join([FROZEN[0]] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
    return env


def freeze(workdir: Path) -> None:
    """Measure a copy of the tool taken now: the working tree may change during the run."""
    import celery_chain_lint

    package = Path(celery_chain_lint.__file__).parent
    target = workdir / "tool"
    shutil.copytree(package, target / "celery_chain_lint",
                    ignore=shutil.ignore_patterns("__pycache__"))
    FROZEN.append(str(target))
    # As pip install does: no timed run compiles the analyser (a failure is worth saying).
    compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", str(target)],
                              env=environment(), capture_output=True, text=True)
    if compiled.returncode != 0:
        sys.exit(f"cannot byte-compile the tool: {compiled.stdout}{compiled.stderr}")


def timed(command, cwd: Path):
    """(wall seconds, peak RSS in MB of the largest process of the run, exit code)."""
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "start = time.perf_counter()\n"
               "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
               " stderr=subprocess.DEVNULL).returncode\n"
               "wall = time.perf_counter() - start\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               "print(json.dumps([wall, peak, code]))\n")
    result = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=cwd,
                            capture_output=True, text=True, env=environment())
    wall, peak_kb, code = json.loads(result.stdout.strip().splitlines()[-1])
    return wall, peak_kb / 1024, code


def best_of(repeat: int, command, cwd: Path, before=None):
    runs = []
    for _ in range(repeat):
        if before is not None:
            before()
        runs.append(timed(command, cwd))
    return min(runs, key=lambda run: run[0])


def tool(*arguments):
    return [sys.executable, "-m", "celery_chain_lint", "check", "--quiet", "--exit-zero",
            *arguments]


RUFF = [sys.executable, "-m", "ruff", "check", "--select", "ALL", "--no-cache", "--quiet",
        "--exit-zero", "."]
FLAKE8 = [sys.executable, "-m", "flake8", "-j", "2", "--exit-zero", "-q", "."]


def ensure(module: str, package: str) -> bool:
    if importlib.util.find_spec(module) is not None:
        return True
    print(f"installing {package} into this environment...", file=sys.stderr)
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", package])
    return result.returncode == 0


def load():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


# ---- the benchmark ----


def pick_changed_file(tree: Path) -> Path:
    """A file the analysis must parse again when it changes (a canvas call makes it need the
    full pass in any project, Celery's own included), of a common size; else the largest."""
    from celery_chain_lint.load.prefilter import scan

    seeds, others = [], []
    for path in sorted(tree.rglob("*.py")):
        data = path.read_bytes()
        canvas = scan(data).calls_canvas
        (seeds if canvas and 2_000 < len(data) < 20_000 else others).append(
            (len(data), str(path)))
    chosen = sorted(seeds or others)
    return Path(chosen[len(chosen) // 2][1])


def measure_tree(tree: Path, workdir: Path, repeat: int, label: str, competitors=True):
    files, lines = count(tree)
    cache = workdir / f"cache-{label}"

    def clear():
        shutil.rmtree(cache, ignore_errors=True)

    result = {"files": files, "lines": lines, "load_before": load()}
    cold, cold_mb, _ = best_of(repeat, tool("--cache-dir", str(cache), "."), tree, before=clear)
    warm, warm_mb, _ = best_of(repeat, tool("--cache-dir", str(cache), "."), tree)
    changed_file = pick_changed_file(tree)
    counter = [0]

    def touch():
        counter[0] += 1
        with open(changed_file, "a") as handle:
            handle.write(f"# benchmark edit {counter[0]}\n")

    one, one_mb, _ = best_of(repeat, tool("--cache-dir", str(cache), "."), tree, before=touch)
    relative = str(changed_file.relative_to(tree))
    precommit, pre_mb, _ = best_of(repeat, tool("--cache-dir", str(cache), relative), tree,
                                   before=touch)
    result.update({
        "cold_s": cold, "warm_s": warm, "one_file_changed_s": one, "pre_commit_s": precommit,
        "changed_file": relative,
        "peak_mb": max(cold_mb, warm_mb, one_mb, pre_mb), "lines_per_s": lines / cold,
    })
    if competitors:
        if ensure("ruff", "ruff"):
            ruff, _, _ = best_of(repeat, RUFF, tree)
            result["ruff_s"] = ruff
            result["ratio_to_ruff"] = cold / ruff
        if ensure("flake8", "flake8"):
            flake8, _, _ = best_of(1, FLAKE8, tree)
            result["flake8_s"] = flake8
            result["times_faster_than_flake8"] = flake8 / cold
    result["load_after"] = load()
    return result


def linearity(tree: Path, workdir: Path, repeat: int, single: float):
    double = workdir / "double"
    shutil.copytree(tree, double / "a")
    shutil.copytree(tree, double / "b")
    cache = workdir / "cache-double"
    twice, _, _ = best_of(repeat, tool("--cache-dir", str(cache), "."), double,
                          before=lambda: shutil.rmtree(cache, ignore_errors=True))
    return {"double_cold_s": twice, "growth": twice / single}


def measure_dense(tree: Path, workdir: Path, repeat: int, label: str,
                  competitors=("flake8",)):
    """Our cold run (fresh cache) against ``competitors`` (ruff ALL, flake8 -j 2), best of
    ``repeat`` each, the runs taken in turn: all are short, and the machine's speed drifts
    within minutes."""
    files, lines = count(tree)
    cache = workdir / f"cache-{label}"
    commands = {"cold_s": tool("--cache-dir", str(cache), ".")}
    if "ruff" in competitors and ensure("ruff", "ruff"):
        commands["ruff_s"] = RUFF
    if "flake8" in competitors and ensure("flake8", "flake8"):
        commands["flake8_s"] = FLAKE8
    times = {key: [] for key in commands}
    for _ in range(repeat):
        shutil.rmtree(cache, ignore_errors=True)
        for key, command in commands.items():
            times[key].append(timed(command, tree)[0])
    result = {"files": files, "lines": lines, **{key: min(t) for key, t in times.items()}}
    if "ruff_s" in result:
        result["ratio_to_ruff"] = result["cold_s"] / result["ruff_s"]
    if "flake8_s" in result:
        result["times_faster_than_flake8"] = result["flake8_s"] / result["cold_s"]
    return result


def unpack(archive: Path, target: Path) -> None:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:  # drops absolute and ".." parts of names
            wheel.extractall(target)
        return
    with tarfile.open(archive) as tar:
        # filter="data" refuses links and paths leaving the target (Pythons that have it)
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(target, **options)


def download(spec: str, target: Path, timeout: int, *options: str) -> Path:
    """``spec`` fetched with ``pip download`` (``options``: which archive) into ``target``,
    unpacked into ``target / "unpacked"``; a RuntimeError saying why when it fails."""
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", *options,
                        "-d", str(target), spec],
                       capture_output=True, text=True, timeout=timeout, check=True)
        archive = next((p for p in target.iterdir() if p.name.endswith((".whl", ".tar.gz"))),
                       None)
        if archive is None:
            raise RuntimeError(f"{spec}: no wheel or .tar.gz downloaded")
        unpack(archive, target / "unpacked")
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pip download of {spec} timed out") from None
    except subprocess.CalledProcessError as error:
        reason = (error.stderr or "").strip().splitlines() or ["failed"]
        raise RuntimeError(f"pip download of {spec}: {reason[-1]}") from None
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        raise RuntimeError(f"{spec}: unpacking: {error}") from None
    return target / "unpacked"


def celery_sdist(workdir: Path) -> Path:
    """The unpacked sdist of the installed celery: the wheel leaves out the tests (``t/``)."""
    try:
        version = importlib.metadata.version("celery")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("celery is not installed") from None
    unpacked = download(f"celery=={version}", workdir / "sdist", 180, "--no-binary", ":all:")
    checkout = next((p for p in unpacked.iterdir() if (p / "celery").is_dir()), None)
    if checkout is None:
        raise RuntimeError(f"celery {version} sdist has no celery/ directory")
    return checkout


def dense(workdir: Path, repeat: int, source: Path | None = None):
    """Celery's own code: the installed package (the keys of this result), then its sources
    and tests (under "with_tests"), from ``source`` or else from the sdist."""
    location = installed_package("celery")
    if location is None and source is None:
        return None
    result = {}
    if location is not None:
        tree = workdir / "dense" / "celery"
        copy_python_files(location, tree)
        result.update(measure_dense(tree.parent, workdir, repeat, "dense"))
    try:
        checkout = source or celery_sdist(workdir)
    except RuntimeError as error:
        result["with_tests"] = {"unavailable": str(error)}
        return result
    tree = workdir / "dense-tests"
    for part in ("celery", "t"):
        copy_python_files(checkout / part, tree / part)
    result["with_tests"] = {"source": str(source) if source else f"{checkout.name} sdist",
                            **measure_dense(tree, workdir, repeat, "dense-tests")}
    return result


def fetch_app(spec: str, workdir: Path) -> Path:
    """The unpacked wheel (else sdist) of ``spec``."""
    # One directory each: the archive is the only file there.
    return download(spec, workdir / "apps-dl" / spec.split("==")[0], 300)


def apps(workdir: Path, repeat: int, competitors: bool, directory: Path | None = None):
    """Each app (a subdirectory of ``directory``, else one of APPS downloaded) as its own
    tree, its ``.py`` files copied: its own ruff or flake8 settings would change their work."""
    names = sorted(p.name for p in directory.iterdir() if p.is_dir()) if directory else APPS
    result = {}
    for index, name in enumerate(names):
        try:
            source = directory / name if directory else fetch_app(name, workdir)
        except RuntimeError as error:
            result[name] = {"unavailable": str(error)}
            continue
        tree = workdir / "apps" / str(index)
        copy_python_files(source, tree)
        if not tree.is_dir():
            result[name] = {"unavailable": "no Python files"}
            continue
        result[name] = measure_dense(tree, workdir, repeat, f"app-{index}",
                                     ("ruff", "flake8") if competitors else ())
    return result


def app_row(name: str, measured) -> str:
    if "unavailable" in measured:
        return f"| {name} | not available: {measured['unavailable']} | | | | | | |"
    ruff = flake8 = ("-", "-")
    if "ruff_s" in measured:
        ruff = (f"{measured['ruff_s']:.2f}", f"{measured['ratio_to_ruff']:.2f}")
    if "flake8_s" in measured:
        flake8 = (f"{measured['flake8_s']:.2f}", f"{measured['times_faster_than_flake8']:.1f}x")
    return (f"| {name} | {measured['files']} | {measured['lines']:,} | {measured['cold_s']:.2f} "
            f"| {ruff[0]} | {ruff[1]} | {flake8[0]} | {flake8[1]} |")


def dense_row(name: str, measured) -> str:
    target = " | >= 3x faster than flake8 |"
    if "unavailable" in measured:
        return f"| Celery-dense, {name} | not available: {measured['unavailable']}{target}"
    line = (f"| Celery-dense, {name} ({measured['files']} files, {measured['lines']:,} lines), "
            f"cold | {measured['cold_s']:.2f} s")
    if "flake8_s" in measured:
        line += (f", flake8 -j 2 {measured['flake8_s']:.2f} s "
                 f"({measured['times_faster_than_flake8']:.1f}x faster)")
    return line + target


def report(results) -> str:
    main = results["tree"]
    out = [f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
           f"Python {results['machine']['python']}, {results['machine']['system']}",
           f"Load average before / after: {main['load_before']} / {main['load_after']}",
           f"Tree: {results['tree_description']}: {main['files']} files, {main['lines']} lines",
           "",
           "| measure | celery-chain-lint | target |",
           "|---|---|---|",
           f"| cold (empty cache) | {main['cold_s']:.2f} s ({main['lines_per_s']:,.0f} lines/s) | |"]
    if "ruff_s" in main:
        out.append(f"| ruff check --select ALL --no-cache | {main['ruff_s']:.2f} s "
                   f"(ratio {main['ratio_to_ruff']:.2f}) | ratio <= 1.0 |")
    if "flake8_s" in main:
        out.append(f"| flake8 -j 2 | {main['flake8_s']:.2f} s "
                   f"({main['times_faster_than_flake8']:.1f}x faster) | >= 10x |")
    out += [f"| warm (nothing changed) | {main['warm_s']:.2f} s | <= 0.3 s |",
            f"| one file changed | {main['one_file_changed_s']:.2f} s | <= 0.6 s |",
            f"| pre-commit (that file only, warm) | {main['pre_commit_s']:.2f} s | <= 0.6 s |",
            f"| peak memory (largest process) | {main['peak_mb']:.0f} MB | <= 300 MB |"]
    if "linearity" in results:
        lin = results["linearity"]
        out.append(f"| twice the code, cold | {lin['double_cold_s']:.2f} s "
                   f"({lin['growth']:.2f}x) | <= 2.2x |")
    dense_result = results.get("dense") or {}
    if "cold_s" in dense_result:
        out.append(dense_row("sources: installed celery", dense_result))
    if "with_tests" in dense_result:
        with_tests = dense_result["with_tests"]
        source = f": {with_tests['source']}" if "source" in with_tests else ""
        out.append(dense_row(f"sources and tests{source}", with_tests))
    if results.get("apps"):
        out += ["", "Celery applications, cold (empty cache):", "",
                ("| app | files | lines | ours (s) | ruff ALL (s) | ours/ruff (<= 1.0) "
                 "| flake8 -j 2 (s) | flake8/ours (>= 10x) |"), "|---|---|---|---|---|---|---|---|"]
        out += [app_row(name, measured) for name, measured in results["apps"].items()]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", help="code to benchmark (default: see above)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measure (best kept)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--skip-competitors", action="store_true", help="no ruff, no flake8")
    parser.add_argument("--skip-linearity", action="store_true")
    parser.add_argument("--skip-dense", action="store_true", help="neither Celery-dense tree")
    parser.add_argument("--dense-source", metavar="DIR", type=Path,
                        help="a Celery checkout (celery/ and t/) for the sources-and-tests "
                             "tree, instead of downloading the sdist")
    parser.add_argument("--apps", action="store_true",
                        help="also measure real Celery applications (downloads ~250 MB)")
    parser.add_argument("--apps-dir", metavar="DIR", type=Path,
                        help="measure each subdirectory of DIR as an app, instead of "
                             "downloading (implies --apps)")
    args = parser.parse_args(argv)
    if args.dense_source and not all((args.dense_source / d).is_dir() for d in ("celery", "t")):
        parser.error(f"--dense-source {args.dense_source}: no celery/ and t/ directories")
    if args.apps_dir and not args.apps_dir.is_dir():
        parser.error(f"--apps-dir {args.apps_dir}: not a directory")
    with tempfile.TemporaryDirectory(prefix="ccl-bench-") as temporary:
        workdir = Path(temporary)
        freeze(workdir)
        if args.directory:
            tree = workdir / "tree"
            copy_python_files(Path(args.directory).resolve(), tree)
            description = f"{args.directory} (copied)"
        else:
            tree = default_tree(workdir)
            description = "stdlib + " + ", ".join(
                n for n in ("celery", "kombu", "django") if installed_package(n))
        results = {"machine": machine(), "tree_description": description,
                   "tree": measure_tree(tree, workdir, args.repeat, "tree",
                                        competitors=not args.skip_competitors)}
        if not args.skip_linearity:
            results["linearity"] = linearity(tree, workdir, args.repeat,
                                             results["tree"]["cold_s"])
        if not args.skip_dense:
            source = args.dense_source.resolve() if args.dense_source else None
            results["dense"] = dense(workdir, args.repeat, source)
        if args.apps or args.apps_dir:
            directory = args.apps_dir.resolve() if args.apps_dir else None
            results["apps"] = apps(workdir, args.repeat, not args.skip_competitors, directory)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
