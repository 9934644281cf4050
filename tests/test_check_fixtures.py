"""The CLI over fixtures/ reports exactly the findings the fixtures' ``# expect:`` comments name."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from expectations import expected_findings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def run_check(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "celery_chain_lint", "check", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def fixture_findings():
    result = run_check("--format", "json", "fixtures")
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_fixtures_report_exactly_the_expected_findings(fixture_findings):
    found = {(Path(f["path"]).relative_to("fixtures").as_posix(), f["line"], f["code"])
             for f in fixture_findings}
    expected = expected_findings(FIXTURES)
    assert sorted(found - expected) == [], "reported but not expected"
    assert sorted(expected - found) == [], "expected but not reported"


def test_json_findings_follow_the_contract(fixture_findings):
    assert fixture_findings
    for finding in fixture_findings:
        for key in ("code", "name", "path", "line", "column", "end_line", "end_column",
                    "message", "fix"):
            assert key in finding
        assert (finding["line"], finding["column"]) <= (finding["end_line"], finding["end_column"])


def test_check_does_not_import_the_analysed_code(tmp_path):
    marker = Path("/tmp/celery_chain_lint_IMPORTED")
    marker.unlink(missing_ok=True)
    result = run_check("fixtures/never_imported")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CCL001" in result.stdout
    assert not marker.exists()


def test_check_does_not_import_celery():
    code = ("import sys, celery_chain_lint.cli as c\n"
            "sys.argv=['x','check','fixtures/shop']\n"
            "try:\n    c.main()\nexcept SystemExit:\n    pass\n"
            "print('celery' in sys.modules, 'kombu' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stdout + result.stderr


def test_exit_codes():
    assert run_check("fixtures/lookalikes").returncode == 0
    assert run_check("fixtures/shop").returncode == 1
    missing = run_check("does/not/exist")
    assert missing.returncode == 2 and "does/not/exist" in missing.stderr
    assert run_check("--select", "NOPE", "fixtures").returncode == 2
