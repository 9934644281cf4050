"""Every rule's VALID and INVALID examples, as fixit runs them: the examples are the tests."""
from __future__ import annotations

import pytest

from celery_chain_lint import engine
from celery_chain_lint.findings import PARSE_ERROR_CODE
from celery_chain_lint.rules import ALL_RULES
from celery_chain_lint.rules.base import Invalid
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


def _fixed_examples():
    for rule in ALL_RULES:
        for index, source in enumerate(rule.INVALID):
            if isinstance(source, Invalid) and source.fixed is not None:
                yield pytest.param(rule, source, id=f"{rule.code}-fixed-{index}")


@pytest.mark.parametrize("rule, example", list(_fixed_examples()))
def test_invalid_example_fixes_to_its_expected_source(tmp_path, monkeypatch, rule, example):
    """As fixit's ``expected_replacement``: ``--fix`` (``--unsafe-fixes`` for a rule whose
    fixes change behaviour) turns the example into ``fixed``, and nothing else."""
    from celery_chain_lint.config.settings import Settings
    from celery_chain_lint.fixes import fixer

    (tmp_path / "example.py").write_text(example)
    monkeypatch.chdir(tmp_path)
    outcome = fixer.fix(["example.py"], Settings(use_cache=False),
                        unsafe=rule.fix_safety != "safe", write=False)
    (change,) = outcome.changes
    assert change.fixed.decode() == example.fixed


def test_every_fixable_rule_shows_its_fix_in_an_example():
    fixable = {rule.code for rule in ALL_RULES if rule.fixable}
    shown = {values[0].code for values in (p.values for p in _fixed_examples())}
    assert fixable <= shown, fixable - shown


def test_every_rule_is_documented():
    for rule in ALL_RULES:
        doc = rule.documentation()
        assert doc.startswith(f"{rule.code} {rule.name}:"), rule
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## How to fix"):
            assert heading in doc, (rule.code, heading)
        assert rule.VALID and rule.INVALID, rule.code
