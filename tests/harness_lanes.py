"""The long runs of tests/test_harness_runtime.py in processes of their own ("lanes"), so that
they happen at the same time instead of one after the other.

A verify run spends nearly all its time waiting (on the worker, on polls, on the timeouts it
observes: about a tenth of a core for the embedded run of every positive), so a few of them
overlap well on two cores, and the fault tests run in the test process meanwhile. A lane runs
its parts one after the other; each part is exactly the call the test made before
(``Verifier(Options(...)).run(findings)``, ``replay_clean(negative_workflows(),
Options(...))``), and the test asserts on what it returned, as before.

Run as ``python tests/harness_lanes.py SPEC.json DIRECTORY``: SPEC lists the parts, and each
part's result (or the traceback of what went wrong) is written to DIRECTORY/PART.json as soon
as that part is done.
"""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def negative_workflows():
    """Workflows of the fixtures with no ``# expect:`` in their function."""
    try:
        from expectations import expected_findings
    except ImportError:  # tests/ became a package
        from tests.expectations import expected_findings
    from celery_chain_lint.harness.workflows import project_workflows

    expected = expected_findings(FIXTURES)
    ranges = {}
    negatives = []
    for workflow in project_workflows([str(FIXTURES.relative_to(ROOT))]):
        if not workflow.scope:
            continue
        path = Path(workflow.path)
        rel = path.relative_to("fixtures").as_posix() if not path.is_absolute() \
            else path.relative_to(FIXTURES).as_posix()
        if rel not in ranges:
            tree = ast.parse((ROOT / workflow.path).read_text(encoding="utf-8"))
            ranges[rel] = {}
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    ranges[rel].setdefault(node.name, []).append((node.lineno, node.end_lineno))
        spans = ranges[rel].get(workflow.scope.split(".")[-1], [])
        if any(file == rel and any(a <= line <= b for a, b in spans)
               for file, line, _ in expected):
            continue
        negatives.append(workflow)
    return negatives


# ---- in the lane's process ----------------------------------------------------------------


def _run(spec: Dict[str, Any], cache: Dict[str, Any]) -> Dict[str, Any]:
    from celery_chain_lint.harness.verify import Options, Verifier

    options = Options(**spec.get("options", {}))
    if spec["kind"] == "verify":
        verifier = Verifier(options)
        started = time.monotonic()
        results = verifier.run(spec["findings"])
        return {"results": results, "elapsed": time.monotonic() - started,
                "workdir": verifier.env.workdir, "run_id": verifier.env.run_id,
                "queue": verifier.env.queue}
    if spec["kind"] == "negatives":
        from celery_chain_lint.harness.workflows import replay_clean

        if "negatives" not in cache:  # one analysis serves every backend's part
            cache["negatives"] = negative_workflows()
        negatives = cache["negatives"]
        return {"count": len(negatives), "outcomes": replay_clean(negatives, options)}
    raise ValueError(f"unknown lane kind {spec['kind']!r}")


def main(argv: List[str]) -> int:
    spec_path, directory = argv
    with open(spec_path, encoding="utf-8") as handle:
        parts = json.load(handle)
    cache: Dict[str, Any] = {}
    for part in parts:
        try:
            out = _run(part, cache)
        except BaseException:  # noqa: BLE001 - reported to the test, which fails with it
            out = {"error": traceback.format_exc()}
        path = os.path.join(directory, f"{part['name']}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(out, default=repr))
        os.replace(path + ".tmp", path)
    return 0


# ---- in the test process ------------------------------------------------------------------


def _die_with_parent() -> None:  # in the child, before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the fixture's finalizer kills the lane
        pass


class Lane:
    """Parts run one after the other in a process of their own, started at once;
    ``result(part)`` waits for that part."""

    def __init__(self, name: str, parts: List[Dict[str, Any]], directory: Path):
        self.name = name
        self.parts = [part["name"] for part in parts]
        self.directory = directory / name
        self.directory.mkdir()
        self.spec_path = directory / f"{name}.spec.json"
        self.log_path = directory / f"{name}.log"
        self.spec_path.write_text(json.dumps(parts), encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(self.spec_path),
                 str(self.directory)],
                cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    def result(self, part: str, timeout: float = 900) -> Dict[str, Any]:
        """What the part returned; AssertionError with its traceback when it raised."""
        assert part in self.parts, (part, self.parts)
        path = self.directory / f"{part}.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.process.poll() is not None and not path.exists():
                raise AssertionError(f"lane {self.name} exited with {self.process.returncode} "
                                     f"before {part} was done:\n" + self.log_tail())
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"lane {self.name}: {part} not done within "
                                     f"{timeout:g}s:\n" + self.log_tail())
            time.sleep(0.05)
        out = json.loads(path.read_text(encoding="utf-8"))
        if "error" in out:
            raise AssertionError(f"{part} (lane {self.name}) raised:\n{out['error']}")
        return out

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """End the lane if it still runs (a failed or interrupted test's); its workers die
        with it (PR_SET_PDEATHSIG)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
