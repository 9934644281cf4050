"""JUnit XML: one test suite per file, one failing test case per finding (as ruff writes it);
a clean run is one passing test case."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List
from xml.etree import ElementTree as ET

from celery_chain_lint.findings import Finding
from celery_chain_lint.reporters.printable import xml_text


def render(findings: List[Finding], files: int, options=None) -> str:
    suites = ET.Element("testsuites", name="celery-chain-lint", tests=str(max(len(findings), 1)),
                        failures=str(len(findings)), errors="0")
    if not findings:
        suite = ET.SubElement(suites, "testsuite", name="celery-chain-lint", tests="1",
                              failures="0", errors="0")
        ET.SubElement(suite, "testcase", name="No findings", classname="celery-chain-lint")
    by_path: Dict[str, List[Finding]] = defaultdict(list)
    for finding in findings:
        by_path[xml_text(finding.path)].append(finding)  # XML holds no lone surrogate
    for path, here in by_path.items():
        suite = ET.SubElement(suites, "testsuite", name=path, tests=str(len(here)),
                              failures=str(len(here)), errors="0")
        for f in here:
            case = ET.SubElement(suite, "testcase", name=f"celery-chain-lint.{f.code}",
                                 classname=path, file=path, line=str(f.span.line),
                                 column=str(f.span.column))
            message = xml_text(f.message)
            failure = ET.SubElement(case, "failure", message=message, type=f.code)
            failure.text = f"{path}:{f.span.line}:{f.span.column}: {f.code} {message}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
