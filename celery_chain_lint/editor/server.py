"""``celery-chain-lint server``: a Language Server (LSP over standard input and output).

An editor gets the findings of ``check`` as diagnostics while the user types, without saving:
the open buffers' text is analysed in place of the files on disk (``Settings.overrides``, as
``check - --stdin-filename`` does), against the whole project around the file, so that a task
defined in another module is known (the analysis cache keeps that fast). It offers each
finding's fix as a code action (unsafe fixes say so, and are never "preferred"), a ``# noqa``
quick fix for every finding, and the rule's ``explain`` page on hover.

pygls (2.x) speaks the protocol; it is an optional dependency (``pip install
'celery-chain-lint[lsp]'``), imported only by this command.
"""
from __future__ import annotations

import os
import tokenize
from dataclasses import dataclass, field
from io import BytesIO
from typing import Dict, List, Sequence

from celery_chain_lint import __version__
from celery_chain_lint.findings import Edit, Finding

SOURCE = "celery-chain-lint"


@dataclass
class Analysed:
    """The findings last published for one document, and the text they are about."""
    text: str
    findings: List[Finding] = field(default_factory=list)


def findings_for(path: str, text: str, open_documents: Dict[str, str]) -> List[Finding]:
    """The findings of ``check`` for the file ``path`` holding ``text``; every open document's
    text stands in for its file (``open_documents``: path -> text)."""
    from celery_chain_lint import engine
    from celery_chain_lint.load import stdin_context
    from celery_chain_lint.config.files import resolve

    settings = resolve([path], None, False)
    texts = {**open_documents, path: text}
    settings.overrides = {os.path.abspath(name): _as_bytes(content)
                          for name, content in texts.items()}
    paths = [path] if os.path.isfile(path) else stdin_context(path, settings)
    key = os.path.realpath(path)
    return [finding for finding in engine.check(paths, settings).findings
            if os.path.realpath(finding.path) == key]


def _as_bytes(text: str) -> bytes:
    """The buffer's text as the file would hold it: in the encoding its coding cookie
    declares (UTF-8 without one)."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return text.encode(encoding)
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return data  # the analysis reports the problem (CCL999) as check would


def build_server():
    """The language server, its features registered (``start_io`` runs it)."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    server = LanguageServer(SOURCE, __version__,
                            text_document_sync_kind=types.TextDocumentSyncKind.Full)
    analysed: Dict[str, Analysed] = {}

    def publish(uri: str) -> None:
        document = server.workspace.get_text_document(uri)
        if not document.path.endswith(".py"):
            return
        others = {doc.path: doc.source for other, doc in server.workspace.text_documents.items()
                  if other != uri and doc.path.endswith(".py")}
        text = document.source
        findings = findings_for(document.path, text, others)
        analysed[uri] = Analysed(text, findings)
        lines = _lines(text)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=document.version,
            diagnostics=[diagnostic(f, lines, document.position_codec) for f in findings]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls, params: types.DidOpenTextDocumentParams):
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls, params: types.DidChangeTextDocumentParams):
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls, params: types.DidSaveTextDocumentParams):
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls, params: types.DidCloseTextDocumentParams):
        analysed.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_action(ls, params: types.CodeActionParams):
        uri = params.text_document.uri
        state = analysed.get(uri)
        if state is None:
            return []
        codec = server.workspace.get_text_document(uri).position_codec
        lines = _lines(state.text)
        actions = []
        for finding in state.findings:
            found = diagnostic(finding, lines, codec)
            if _overlap(found.range, params.range):
                actions.extend(code_actions(uri, finding, found, state.text, lines, codec))
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls, params: types.HoverParams):
        state = analysed.get(params.text_document.uri)
        if state is None:
            return None
        codec = server.workspace.get_text_document(params.text_document.uri).position_codec
        lines = _lines(state.text)
        pages = []
        for finding in state.findings:
            found = diagnostic(finding, lines, codec)
            if _inside(params.position, found.range) and finding.code not in pages:
                pages.append(finding.code)
        if not pages:
            return None
        from celery_chain_lint.rules.catalogue import by_code, explanation

        return types.Hover(contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value="\n\n---\n\n".join(explanation(by_code(code)) for code in pages)))

    return server


def diagnostic(finding: Finding, lines: Sequence[str], codec):
    from lsprotocol import types

    severity = types.DiagnosticSeverity.Error if finding.code == "CCL999" else \
        types.DiagnosticSeverity.Warning
    return types.Diagnostic(range=_range(finding.span, lines, codec), message=finding.message,
                            severity=severity, code=finding.code, source=SOURCE,
                            data={"name": finding.name})


def code_actions(uri: str, finding: Finding, found, text: str, lines: Sequence[str], codec):
    """The finding's fix (when it has one), then ``# noqa: CODE`` for its line."""
    from celery_chain_lint.fixes.noqa import add_noqa_edits

    actions = []
    if finding.fix is not None:
        safe = finding.fix.applicability == "safe"
        title = f"{finding.code}: {finding.fix.message}" + ("" if safe else " (unsafe)")
        actions.append(_action(title, uri, finding.fix.edits, found, lines, codec, safe))
    noqa = add_noqa_edits([finding], text)
    if noqa:
        actions.append(_action(f"{finding.code}: ignore on this line (# noqa: {finding.code})",
                               uri, noqa, found, lines, codec, False))
    return actions


def _action(title: str, uri: str, edits: Sequence[Edit], found, lines, codec, preferred: bool):
    from lsprotocol import types

    return types.CodeAction(
        title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[found],
        is_preferred=preferred,
        edit=types.WorkspaceEdit(changes={uri: [
            types.TextEdit(range=_range(edit.span, lines, codec), new_text=edit.content)
            for edit in edits]}))


def _lines(text: str) -> List[str]:
    """Lines as the analysis counts them (Python: ``\\n``, ``\\r\\n`` and ``\\r`` only)."""
    from celery_chain_lint.load import split_lines

    return split_lines(text, keepends=True) or [""]


def _range(span, lines: Sequence[str], codec):
    """A 1-based span in code points as an LSP range in the client's units (UTF-16 unless
    the client chose another encoding)."""
    from lsprotocol import types

    def position(line: int, column: int):
        return codec.position_to_client_units(
            lines, types.Position(line=max(line - 1, 0), character=max(column - 1, 0)))

    return types.Range(start=position(span.line, span.column),
                       end=position(span.end_line, span.end_column))


def _before(a, b) -> bool:
    return (a.line, a.character) <= (b.line, b.character)


def _inside(position, area) -> bool:
    return _before(area.start, position) and _before(position, area.end)


def _overlap(first, second) -> bool:
    return _before(first.start, second.end) and _before(second.start, first.end)


def serve() -> None:
    """Speak LSP on standard input and output until the client says exit."""
    build_server().start_io()
