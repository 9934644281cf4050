"""Paths and messages made printable in every format, as ruff prints them.

A file name need not be valid UTF-8: Python keeps its undecodable bytes as lone surrogates
(``b"caf\\xe9.py"`` is ``"caf\\udce9.py"``), which is what the analysis uses throughout (the file
can be opened by it). No output format can hold a lone surrogate: UTF-8 cannot encode it, XML
forbids it, a strict JSON parser rejects ``"\\udce9"``. At output each undecodable byte sequence
becomes U+FFFD, as ruff's ``Path::display`` renders it: the same in text, JSON, SARIF messages,
GitLab, GitHub and JUnit. SARIF locations are URIs: there the bytes themselves are percent-encoded
(``caf%E9.py``), which loses nothing.
"""
from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Characters XML 1.0 does not allow at all, even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def readable(text: str) -> str:
    """``text`` with its undecodable bytes as U+FFFD (one per maximal invalid sequence, as
    UTF-8 decoding with replacement gives); ``text`` itself when it has none."""
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        return _SURROGATE.sub("\ufffd", text)


def clean(value: Any) -> Any:
    """A JSON value with every string (keys included) ``readable``."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def one_line(path: str) -> str:
    """A path for a line-oriented format (``path:line:col: ...``): ``readable``, and quoted as
    git quotes it (``"a\\nb.py"``, C escapes) when it holds a control character, so that one
    finding stays one line. Spaces, ``#``, ``:`` and leading dashes are printed as they are."""
    path = readable(path)
    if not _CONTROL.search(path):
        return path
    escapes = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
    return '"' + "".join(escapes.get(c) or (f"\\x{ord(c):02x}" if _CONTROL.match(c) else c)
                         for c in path) + '"'


def xml_text(text: str) -> str:
    """``readable`` text with the characters XML 1.0 cannot hold as U+FFFD."""
    return _NOT_XML.sub("\ufffd", readable(text))


def uri_reference(path: str) -> str:
    """A relative path as a URI reference: its bytes percent-encoded where a URI needs it
    (``/`` kept), as ``Path.as_uri`` encodes absolute paths."""
    return quote(os.fsencode(path.replace(os.sep, "/")), safe="/")
