"""SARIF 2.1.0, as GitHub code scanning reads it.

One run; ``tool.driver.rules`` lists every code with its summary and documentation (the rule's
page, as ``help.text`` and ``help.markdown``); each result has a ``ruleId``, ``ruleIndex``, a
message and a physical location whose region is the finding's span (1-based, end column
exclusive, columns counted in Unicode code points). Relative paths are relative to
``%SRCROOT%`` (the working directory, where CI runs from the repository root), their bytes
percent-encoded where a URI needs it, as absolute ones are (printable.py). Safe and unsafe
fixes are included as SARIF ``fixes``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

from celery_chain_lint import __version__
from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import clean, uri_reference

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _uri(path: str) -> dict:
    if os.path.isabs(path):
        return {"uri": Path(path).as_uri()}
    return {"uri": uri_reference(path), "uriBaseId": "%SRCROOT%"}


def _region(span) -> dict:
    return {"startLine": span.line, "startColumn": span.column,
            "endLine": span.end_line, "endColumn": span.end_column}


def _first_paragraph(doc: str, heading: str) -> str:
    if heading not in doc:
        return ""
    body = doc.split(heading, 1)[1].strip()
    return body.split("\n\n", 1)[0].split("\n## ", 1)[0].replace("\n", " ").strip()


def _rule(rule) -> dict:
    doc = rule.documentation()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _first_paragraph(doc, "## What it does") or rule.summary},
        "help": {"text": doc, "markdown": doc},
        "defaultConfiguration": {"level": "warning" if rule.code == "CCL998" else "error"},
        "properties": {"tags": ["celery", "correctness"], "fixable": bool(rule.fixable)},
    }


def _fix(finding: Finding) -> dict:
    return {
        "description": {"text": finding.fix.message},
        "artifactChanges": [{
            "artifactLocation": _uri(finding.path),
            "replacements": [{"deletedRegion": _region(edit.span),
                              "insertedContent": {"text": edit.content}}
                             for edit in finding.fix.edits],
        }],
    }


def render(findings: List[Finding], files: int, options=None) -> str:
    from celery_chain_lint.rules.catalogue import all_rules

    rules = all_rules()
    index = {rule.code: position for position, rule in enumerate(rules)}
    results = []
    for f in findings:
        result = {
            "ruleId": f.code,
            "level": "warning" if f.code == "CCL998" else "error",
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": _uri(f.path),
                                                "region": _region(f.span)}}],
        }
        if f.code in index:
            result["ruleIndex"] = index[f.code]
        if f.fix is not None:
            result["fixes"] = [_fix(f)]
        results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "celery-chain-lint", "version": __version__,
                                "semanticVersion": __version__,
                                "rules": [_rule(rule) for rule in rules]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(os.getcwd()).as_uri() + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
            # What the analyser saw: a run with no result may have seen no task at all.
            "properties": {"coverage": [seen.to_json() for seen in
                                        (options.coverage if options is not None else [])]},
        }],
    }
    return json.dumps(clean(log), indent=2) + "\n"
