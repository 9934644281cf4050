"""Reading a source file as Python would, parsing it with Python's ``ast``, and saying where it
fails.

Every way a file can fail to be analysed becomes a ``SourceError`` with a message a user can act
on and the line and column (1-based, in characters) where the problem is:

- **decoding**, as CPython does (PEP 263): a UTF-8 byte-order mark, else a ``coding`` declaration on
  line 1 or 2, else UTF-8. A UTF-16/32 file, an unknown or non-ASCII-compatible encoding, bytes
  that do not decode (located at the first bad byte) and NUL bytes are reported;
- **nesting** that would exhaust the stack: more than 200 levels of brackets (CPython's own
  tokenizer refuses them: "too many nested parentheses"), or an expression nested more deeply
  than ``MAX_EXPRESSION_DEPTH`` (operator chains, attribute chains, nested unary operators,
  adjacent strings...), found by a linear scan of the tokens before any parser sees the file
  (CPython's own compiler stops near 3,000 levels, with a RecursionError at best);
- **size**: more than ``MAX_TOKENS`` tokens (memory stays bounded: the tree and the facts cost
  well under 2.5 KB a token, the bound set when libcst parsed);
- **syntax errors**: CPython's message and position (``ast.parse`` builds a syntax tree and
  nothing else: no byte code is generated, nothing runs), saying which Python read the file: the
  grammar is the running interpreter's, so code written for a newer one is reported, not read.

``run_deep`` runs parsing and the facts pass in a thread with a large stack and a high recursion
limit: the facts pass recurses once per level of an expression.
"""
from __future__ import annotations

import ast
import codecs
import re
import sys
import threading
from dataclasses import dataclass
from typing import Callable, List, Tuple, TypeVar

T = TypeVar("T")

MAX_BRACKET_DEPTH = 200  # CPython's tokenizer (MAXLEVEL): "too many nested parentheses"
# CPython 3.11 cannot compile an expression much deeper than 3,000 levels; the facts pass stops
# reading an expression at ``extract.MAX_DEPTH`` levels anyway.
MAX_EXPRESSION_DEPTH = 1500
# libcst's tree, its positions and the facts cost about 2.5 KB of memory a token, ``ast``'s far
# less: 100,000 lines of short statements (400,000 tokens) peaked near 1 GB then. Beyond this, a
# file is not analysed, and it is counted before any parser runs: a run stays well within 500 MB
# a file.
MAX_TOKENS = 200_000
MAX_FILE_BYTES = 64 * 2 ** 20  # not even read whole beyond this
STACK_SIZE = 512 * 1024 * 1024  # reserved address space; only the pages used are committed
RECURSION_LIMIT = 60_000
MESSAGE_LIMIT = 160


class SourceError(Exception):
    """Why a file cannot be analysed, and where (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.message = message
        self.line = max(1, line)
        self.column = max(1, column)


@dataclass(frozen=True)
class Decoded:
    text: str  # without the byte-order mark
    encoding: str  # the codec's canonical name
    bom: bool

    @property
    def write_encoding(self) -> str:
        """The codec that writes the text back as it was read (the mark included)."""
        return "utf-8-sig" if self.bom else self.encoding


# ---- decoding ----

_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK = re.compile(rb"^[ \t\f]*(?:[#\r\n]|$)")
_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def decode(data: bytes) -> Decoded:
    """The file's text, decoded as CPython would decode it, or a located ``SourceError``."""
    bom = data.startswith(codecs.BOM_UTF8)
    for mark, name in _UTF16_32_BOMS:
        if not bom and data.startswith(mark):
            raise SourceError(f"the file is {name} encoded (it starts with a {name} byte-order "
                              "mark): Python source must be UTF-8, or in an ASCII-compatible "
                              "encoding named by a coding declaration")
    body = data[3:] if bom else data
    encoding, cookie_line = "utf-8", 0
    lines = body.split(b"\n", 2)
    for number, raw in enumerate(lines[:2], start=1):
        match = _COOKIE.match(raw)
        if match is not None:
            name = match.group(1).decode("ascii", "replace")
            column = match.start(1) + 1
            try:
                info = codecs.lookup(name)
            except LookupError:
                raise SourceError(f"unknown encoding '{name}' in the coding declaration",
                                  number, column) from None
            if not _ascii_compatible(info):
                raise SourceError(f"the coding declaration names {name}, which is not an "
                                  "ASCII-compatible encoding: Python cannot read source in it",
                                  number, column)
            if bom and info.name != "utf-8":
                raise SourceError(f"the file starts with a UTF-8 byte-order mark but its coding "
                                  f"declaration says {name}", number, column)
            encoding, cookie_line = info.name, number
            break
        if not _BLANK.match(raw):
            break
    nul = body.find(b"\x00")
    if nul != -1 and encoding == "utf-8":
        line, column = _byte_location(body, nul, encoding)
        hint = " (the file looks UTF-16 encoded)" if _looks_utf16(body) else \
            " (is it a binary file?)" if body.count(b"\x00") > 1 else ""
        raise SourceError(f"source code cannot contain null bytes{hint}", line, column)
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        line, column = _byte_location(body, error.start, encoding)
        bad = body[error.start:error.start + 1].hex()
        declared = f"declared {encoding}" if cookie_line else "UTF-8"
        raise SourceError(f"cannot decode byte 0x{bad} as {declared} ({error.reason}): save "
                          f"the file as UTF-8 or declare its encoding in a '# -*- coding: ... -*-' "
                          f"line", line, column) from None
    except (LookupError, ValueError, TypeError) as error:  # a codec that fails oddly
        raise SourceError(f"cannot decode the file as {encoding}: {error}") from None
    if "\x00" in text:
        index = text.index("\x00")
        line, column = _text_location(text, index)
        raise SourceError("source code cannot contain null bytes", line, column)
    return Decoded(text, encoding, bom)


def _ascii_compatible(info: codecs.CodecInfo) -> bool:
    try:
        return codecs.encode("#x=1\n", info.name) == b"#x=1\n"
    except Exception:
        return False


def _looks_utf16(data: bytes) -> bool:
    sample = data[:400]
    return len(sample) >= 4 and (sample[1::2].count(0) > len(sample) // 4
                                 or sample[0::2].count(0) > len(sample) // 4)


def _byte_location(data: bytes, offset: int, encoding: str) -> Tuple[int, int]:
    """1-based (line, character column) of byte ``offset``; lines end at \\r\\n, \\r or \\n."""
    prefix = data[:offset]
    line_start = max(prefix.rfind(b"\n"), prefix.rfind(b"\r")) + 1
    line = prefix.count(b"\n") + prefix.count(b"\r") - prefix.count(b"\r\n") + 1
    column = len(prefix[line_start:].decode(encoding, "replace")) + 1
    return line, column


def _text_location(text: str, index: int) -> Tuple[int, int]:
    prefix = text[:index]
    starts = [m.end() for m in _LINE_BREAK.finditer(prefix)]
    return len(starts) + 1, index - (starts[-1] if starts else 0) + 1


# ---- nesting ----

_TOKEN = re.compile(r"""
  (?P<s>(?:[rRbBuUfFtT]{1,2})?(?:
        '''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''
      | \"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*\"\"\"
      | '[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*'
      | "[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"))
| (?P<c>\#[^\r\n]*)
| (?P<w>[^\W\d]\w*)
| (?P<n>\.?\d(?:[eE][-+]|[\w.])*)
| (?P<o>[(\[{])
| (?P<x>[)\]}])
| (?P<k>\\(?:\r\n|\r|\n))
| (?P<e>\r\n|\r|\n)
| (?P<p>\*\*=?|//=?|<<=?|>>=?|->|:=|[-+*/%@&|^<>!=]=|[-+*/%@&|^~<>.=,:;])
""", re.S | re.X)

# Precedence classes of the depth estimate (higher binds tighter). A binary operator of class p
# nests its operands' chains of classes above p; a prefix operator nests what follows.
_TERNARY, _OR, _AND, _NOT, _COMPARE, _BITOR, _XOR, _BITAND, _SHIFT, _ADD, _MUL, _UNARY, \
    _POW, _AWAIT, _TRAILER = range(15)
_CLASSES = 15
_BINARY = {"|": _BITOR, "^": _XOR, "&": _BITAND, "<<": _SHIFT, ">>": _SHIFT, "+": _ADD,
           "-": _ADD, "*": _MUL, "/": _MUL, "//": _MUL, "%": _MUL, "@": _MUL, "**": _POW,
           "<": _COMPARE, ">": _COMPARE, "==": _COMPARE, "!=": _COMPARE, "<=": _COMPARE,
           ">=": _COMPARE, "or": _OR, "and": _AND, "if": _TERNARY, "else": _TERNARY,
           "in": _COMPARE, "is": _COMPARE}
_FLAT = frozenset({_COMPARE})  # ``a < b < c`` is one node
_KEYWORDS_PREFIX = {"not": _NOT, "await": _AWAIT, "lambda": _TERNARY}
_OPERAND_WORDS = frozenset({"None", "True", "False"})
_KEYWORDS = frozenset({
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield"})


class _Level:
    __slots__ = ("base", "counts", "total", "lambdas")

    def __init__(self, base: int):
        self.base = base
        self.counts = [0] * _CLASSES
        self.total = 0
        self.lambdas = 0

    def reset(self) -> None:
        if self.total:
            self.counts = [0] * _CLASSES
            self.total = 0

    def add(self, kind: int, resets: bool) -> int:
        counts = self.counts
        if resets:
            dropped = sum(counts[kind + 1:])
            if dropped:
                for index in range(kind + 1, _CLASSES):
                    counts[index] = 0
                self.total -= dropped
        if kind not in _FLAT or not resets:
            counts[kind] += 1
            self.total += 1
        return self.base + self.total


def check_nesting(text: str, max_brackets: int = MAX_BRACKET_DEPTH,
                  max_depth: int = MAX_EXPRESSION_DEPTH, max_tokens: int = MAX_TOKENS) -> None:
    """Raise ``SourceError`` where ``text`` nests brackets or expressions too deeply.

    A linear scan of the tokens estimates, at every token, how deep the syntax tree is there:
    each open bracket adds a level, and within a bracket each chain of operators of one
    precedence adds one level per operator (a left-associative chain ``a | b | c`` is a tree of
    that depth), as do prefix operators, attribute and call chains and adjacent strings. Chains of
    tighter operators inside the operands of a looser one do not add up (``a*b + c*d`` is not 3
    deep), and commas, colons, keywords and the end of a statement start over."""
    levels: List[_Level] = [_Level(0)]
    level = levels[0]
    previous_operand = previous_string = False
    tokens = 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        depth = 0
        tokens += 1
        if tokens > max_tokens:
            line, column = _text_location(text, match.start())
            raise SourceError(f"file too large to analyse: more than {max_tokens:,} tokens "
                              f"(the analysis needs about 2.5 KB of memory a token)", line, column)
        if kind == "w":
            word = match.group()
            if word in _KEYWORDS and word not in _OPERAND_WORDS:
                if word in _BINARY and previous_operand:
                    depth = level.add(_BINARY[word], True)
                elif word in _KEYWORDS_PREFIX:
                    depth = level.add(_KEYWORDS_PREFIX[word], False)
                    if word == "lambda":
                        level.lambdas += 1
                elif word == "not":
                    pass
                else:
                    level.reset()
                previous_operand = previous_string = False
                if depth > max_depth:
                    _too_deep(text, match.start(), max_depth)
                continue
            previous_operand, previous_string = True, False
            continue
        if kind == "n":
            previous_operand, previous_string = True, False
            continue
        if kind == "s":
            if previous_string:
                depth = level.add(_TRAILER, False)
            previous_operand = previous_string = True
        elif kind == "o":
            if len(levels) > max_brackets:
                line, column = _text_location(text, match.start())
                raise SourceError(f"too many nested parentheses (more than {max_brackets} "
                                  "levels; Python itself refuses this file)", line, column)
            if previous_operand:  # a call or a subscript: one more link of a trailer chain
                level.add(_TRAILER, False)
            level = _Level(level.base + level.total + 1)
            levels.append(level)
            depth = level.base
            previous_operand = previous_string = False
        elif kind == "x":
            if len(levels) > 1:
                levels.pop()
                level = levels[-1]
            previous_operand, previous_string = True, False
        elif kind == "e":
            if len(levels) == 1:
                level.reset()
                level.lambdas = 0
            previous_operand = previous_string = False
        elif kind == "p":
            token = match.group()
            if token == ".":
                depth = level.add(_TRAILER, False)
                previous_operand = True
                previous_string = False
                if depth > max_depth:
                    _too_deep(text, match.start(), max_depth)
                continue
            if token in _BINARY and previous_operand:
                depth = level.add(_BINARY[token], True)
            elif token in ("-", "+", "~"):
                depth = level.add(_UNARY, False)
            elif token == "**" or token == "*":
                pass  # ``*args`` / ``**kwargs``
            elif token == ":" and level.lambdas:
                level.lambdas -= 1
            else:  # , ; : = augmented assignment -> :=
                level.reset()
            previous_operand = previous_string = False
        else:  # comments and backslash continuations
            continue
        if depth > max_depth:
            _too_deep(text, match.start(), max_depth)


def check_nesting_by_statement(text: str, tree, max_depth: int = MAX_EXPRESSION_DEPTH,
                               max_tokens: int = MAX_TOKENS) -> None:
    """``check_nesting(text)`` for a text that ``ast.parse`` read as ``tree`` (so no bracket
    nests deeper than CPython's limit), scanning only the statements that could be too deep.

    The estimate starts over at every statement (a newline, ``;`` or ``:`` outside brackets
    comes first), and each token raises it by 2 at most (``f(`` links a trailer and opens a
    level), so a statement of fewer than ``max_depth / 2`` characters cannot be too deep:
    the others (a simple statement, a compound statement's header, a decorator) are scanned
    alone, their errors located in ``text``; and a text of fewer characters than
    ``max_tokens`` cannot hold that many tokens."""
    import ast

    if len(text) > max_tokens:
        return check_nesting(text, max_depth=max_depth, max_tokens=max_tokens)
    lines = _LINE_BREAK.split(text)
    starts = [0]
    for match in _LINE_BREAK.finditer(text):
        starts.append(match.end())
    limit = max_depth // 2

    def offset(line: int, byte_column: int) -> int:
        raw = lines[line - 1]
        column = byte_column if raw.isascii() else \
            len(raw.encode("utf-8")[:byte_column].decode("utf-8", "replace"))
        return starts[line - 1] + column

    def scan(first: int, column: int, last: int, end_column: int) -> None:
        if starts[last - 1] + len(lines[last - 1]) - starts[first - 1] <= limit:
            return  # the lines it spans are short enough
        start, end = offset(first, column), offset(last, end_column)
        try:
            check_nesting(text[start:end], max_depth=max_depth, max_tokens=max_tokens)
        except SourceError as error:
            line = error.line + first - 1
            shift = start - starts[first - 1] if error.line == 1 else 0
            raise SourceError(error.message, line, error.column + shift) from None

    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Match):
            return check_nesting(text, max_depth=max_depth, max_tokens=max_tokens)
        bodies = [getattr(node, name, None) for name in ("body", "orelse", "finalbody")]
        bodies = [body for body in bodies if isinstance(body, list) and body]
        handlers = getattr(node, "handlers", None) or []
        if not bodies and not handlers:
            scan(node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
            continue
        for decorator in getattr(node, "decorator_list", ()):
            scan(decorator.lineno, decorator.col_offset, decorator.end_lineno,
                 decorator.end_col_offset)
        first = node.body[0]  # the header ends where the body starts (``if x: y`` included)
        scan(node.lineno, 0, first.lineno, first.col_offset)
        for handler in handlers:
            scan(handler.lineno, 0, handler.body[0].lineno, handler.body[0].col_offset)
            statements.extend(handler.body)
        for body in bodies:
            statements.extend(body)


def _too_deep(text: str, index: int, limit: int) -> None:
    line, column = _text_location(text, index)
    raise SourceError(f"expression nested too deeply to analyse (more than {limit} levels)",
                      line, column)


# ---- parsing ----


def parse_text(text: str, nesting_checked: bool = False) -> ast.Module:
    """``nesting_checked``: the caller checked a text that holds this one's nesting already."""
    if not nesting_checked:
        check_nesting(text)
    try:
        return ast.parse(text, "<analysed file>")
    except SyntaxError as error:
        raise _syntax_error(text, error) from None
    except (RecursionError, ValueError):
        raise SourceError("nesting too deep to parse") from None
    except MemoryError:
        raise SourceError("not enough memory to parse the file") from None


def _syntax_error(text: str, error: SyntaxError) -> SourceError:
    """CPython's message, at CPython's position (``ast.parse`` builds a tree and nothing else:
    no byte code is generated, nothing runs)."""
    message = (error.msg or "invalid syntax").splitlines()[0]
    line, column = error.lineno or 1, error.offset or 1
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 3].rstrip(", ") + "..."
    lines = _LINE_BREAK.split(text)
    line = min(max(line, 1), max(len(lines), 1))
    column = min(max(column, 1), len(lines[line - 1]) + 1 if lines else 1)
    # The grammar is the running Python's: code for a newer one fails here (PEP 695's
    # ``def f[T]()`` under 3.11), and the reader should know which Python read it.
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return SourceError(f"syntax error: {message} (as Python {version} reads it)", line, column)


# ---- a deep stack ----


def run_deep(function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)`` in a thread with a large stack and recursion limit."""
    if getattr(_DEEP, "active", False):  # already on a deep stack
        return function(*args, **kwargs)
    result: list = []
    failure: list = []

    def target() -> None:
        _DEEP.active = True
        try:
            result.append(function(*args, **kwargs))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    with _STACK_LOCK:  # one at a time: the recursion limit is the interpreter's
        limit = sys.getrecursionlimit()
        thread = threading.Thread(target=target, name="celery-chain-lint-deep", daemon=True)
        previous = threading.stack_size()
        try:
            threading.stack_size(STACK_SIZE)
            sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
            thread.start()
        except (RuntimeError, ValueError, MemoryError):  # no thread of that size: run here
            thread = None
            sys.setrecursionlimit(limit)
        finally:
            threading.stack_size(previous)
        if thread is None:
            return function(*args, **kwargs)
        try:
            thread.join()
        finally:
            sys.setrecursionlimit(limit)
    if failure:
        raise failure[0]
    return result[0]


_STACK_LOCK = threading.Lock()
_DEEP = threading.local()


def undecodable(data: bytes) -> bool:
    """Whether ``decode`` rejects ``data``; at memory speed for the usual UTF-8 file."""
    if b"\x00" not in data and b"coding" not in data[:1024]:
        try:
            data.decode("utf-8")
            return False
        except UnicodeDecodeError:
            pass
    try:
        decode(data)
    except SourceError:
        return True
    return False


_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str, keepends: bool = False) -> List[str]:
    """The lines of ``text`` as Python counts them: ended by \\r\\n, \\r or \\n only.
    (``str.splitlines`` also splits at form feeds, \\x1c-\\x1e, \\x85, \\u2028 and \\u2029, which
    may sit in comments and strings: line numbers would no longer match the findings'.)"""
    lines = _PHYSICAL_LINE.findall(text)
    if keepends:
        return lines
    return [line.rstrip("\r\n") for line in lines]
