"""Every rule's VALID and INVALID examples, as fixit runs them: the examples are the tests."""
from __future__ import annotations

import pytest

from celery_chain_lint import engine
from celery_chain_lint.findings import PARSE_ERROR_CODE
from celery_chain_lint.rules import ALL_RULES
from expectations import expected_findings


def _examples(kind):
    return list(_each_example(kind))


def _each_example(kind):
    for rule in ALL_RULES:
        for index, source in enumerate(getattr(rule, kind)):
            yield pytest.param(rule, source, id=f"{rule.code}-{kind.lower()}-{index}")


def _findings(tmp_path, source):
    (tmp_path / "example.py").write_text(source)
    report = engine.check([str(tmp_path)])
    return {(f.path.rsplit("/", 1)[-1], f.span.line, f.code) for f in report.findings}


@pytest.mark.parametrize("rule, source", _examples("VALID"))
def test_valid_example_has_no_finding(tmp_path, rule, source):
    found = _findings(tmp_path, source)
    assert not {f for f in found if f[2] in (rule.code, PARSE_ERROR_CODE)}, found


@pytest.mark.parametrize("rule, source", _examples("INVALID"))
def test_invalid_example_has_exactly_its_findings(tmp_path, rule, source):
    found = _findings(tmp_path, source)
    expected = expected_findings(tmp_path)
    assert expected, "an INVALID example must mark its findings with # expect:"
    assert any(code == rule.code for _, _, code in expected)
    assert found == expected


def test_every_rule_is_documented():
    for rule in ALL_RULES:
        doc = rule.documentation()
        assert doc.startswith(f"{rule.code} {rule.name}:"), rule
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## How to fix"):
            assert heading in doc, (rule.code, heading)
        assert rule.VALID and rule.INVALID, rule.code
