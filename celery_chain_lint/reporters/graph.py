"""``verify --html`` and ``check --graph``: each flagged workflow drawn as a graph, in one
self-contained HTML page (inline SVG and CSS, no script, nothing fetched).

A workflow is read from the finding's ``replay`` data (``workflow/replay.py``): chain links
left to right, group members stacked inside a dashed frame, a chord's header then its body,
links and errbacks below what they hang on. The node the finding is about is marked (red
border, "flagged"); with ``verify``'s evidence each node is coloured by the state the worker
stored (SUCCESS, FAILURE, PENDING: never ran...), and the exception, where it was stored, the
timings and notes are listed under the graph. Layout is computed here, in Python: a tree of
boxes, each measured, then placed; so the page needs no layout library and no network.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

CHAR = 7.2  # width of one character of the 12px monospace label font
NODE_HEIGHT = 46
GAP = 44  # between chain links (room for the arrow)
STACK = 14  # between group members
PAD = 12  # inside a frame
TITLE = 18  # a frame's title


@dataclass
class Box:
    """A placed-later piece of the drawing: its size, and how to draw it at (x, y)."""
    width: float
    height: float
    draw: Any  # (x, y) -> List[str] of SVG elements
    # Where arrows attach, relative to the box: the left and right middle by default.
    entry: Optional[Tuple[float, float]] = None
    exit: Optional[Tuple[float, float]] = None

    def __post_init__(self):
        self.entry = self.entry or (0, self.height / 2)
        self.exit = self.exit or (self.width, self.height / 2)


@dataclass
class Observed:
    """What the worker stored for each node, by role (``canvas.chain[1]``...)."""
    nodes: Dict[str, dict] = field(default_factory=dict)

    def state(self, role: str) -> Optional[dict]:
        return self.nodes.get(role)


def render(results: List[dict], title: str) -> str:
    """The page for ``results``: ``verify --format json`` items, or ``check``'s findings."""
    sections = [_section(index, result) for index, result in enumerate(results)]
    drawn = sum(1 for result in results if result.get("replay"))
    summary = (f"{len(results)} finding{'s' if len(results) != 1 else ''}, "
               f"{drawn} workflow{'s' if drawn != 1 else ''} drawn")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"summary\">{_e(summary)}</p>{LEGEND}"
            + "".join(sections) + "</body></html>\n")


def write_html(path: str, results: List[dict], title: str, err) -> bool:
    """The page of ``results`` written to ``path``; False (said on ``err``) if it cannot be."""
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(render(results, title))
    except OSError as error:
        err.write(f"error: cannot write {path}: {error.strerror or error}\n")
        return False
    return True


def _section(index: int, result: dict) -> str:
    status = result.get("status")
    head = (f"<h2><span class=\"code\">{_e(result['code'])}</span> "
            f"<span class=\"where\">{_e(result['path'])}:{result['line']}:{result['column']}"
            f"</span>" + (f" <span class=\"status {_e(status)}\">{_e(status)}</span>"
                          if status else "") + "</h2>"
            f"<p class=\"message\">{_e(result['message'])}</p>")
    replay = result.get("replay")
    if not replay:
        graph = "<p class=\"no-graph\">No workflow to draw: this finding is about a task or " \
                "a statement, not a canvas.</p>"
    else:
        graph = _svg(replay, Observed({n.get("role"): n for n in
                                       (result.get("evidence") or {}).get("nodes") or ()}))
    return (f"<section class=\"finding\" id=\"finding-{index}\" data-code=\"{_e(result['code'])}\""
            f" data-status=\"{_e(status or 'static')}\">{head}{graph}"
            f"{_evidence(result)}</section>")


def _svg(replay: dict, observed: Observed) -> str:
    canvas = _layout(replay.get("canvas"), "canvas", replay, observed)
    callbacks = [(("link" if c.get("kind") == "link" else "errback"),
                  _layout(c.get("callback"), f"{'link' if c.get('kind') == 'link' else 'errback'}"
                          f"[{index}]", replay, observed))
                 for index, c in enumerate(replay.get("callbacks") or ())]
    whole = _hanging(canvas, callbacks)
    width, height = whole.width + 2 * PAD, whole.height + 2 * PAD
    return (f"<div class=\"graph\"><svg class=\"workflow-graph\" "
            f"width=\"{width:.0f}\" height=\"{height:.0f}\" viewBox=\"0 0 {width:.0f} "
            f"{height:.0f}\">{MARKERS}" + "".join(whole.draw(PAD, PAD)) + "</svg></div>")


def _layout(node: Optional[dict], role: str, replay: dict, observed: Observed) -> Box:
    kind = (node or {}).get("type")
    if kind == "chain":
        return _chain([_layout(step, f"{role}.chain[{i}]", replay, observed)
                       for i, step in enumerate(node.get("steps") or ())])
    if kind == "group":
        return _group(node, role, replay, observed)
    if kind == "chord":
        header = _layout(node.get("header"), f"{role}.chord.header", replay, observed)
        body = _layout(node.get("body"), f"{role}.chord.body", replay, observed)
        return _frame("chord", _chain([header, body], label="results list"), "chord")
    return _node(node or {}, role, replay, observed)


def _node(node: dict, role: str, replay: dict, observed: Observed) -> Box:
    label = _label(node, replay)
    seen = observed.state(role) or {}
    state = seen.get("state")
    flagged = bool(node.get("flagged") or seen.get("flagged"))
    second = state or ("flagged" if flagged else "")
    timing = _timing(seen)
    if timing:
        second = f"{second} {timing}".strip()
    width = max(96.0, CHAR * max(len(label), len(second)) + (36 if flagged else 24))
    classes = ["node"] + (["flagged"] if flagged else []) + (
        [f"state-{state.lower()}"] if state else [])
    tooltip = "\n".join(part for part in (role, node.get("task") or "", seen.get("exception") or "")
                        if part)

    def draw(x: float, y: float) -> List[str]:
        mark = (f"<text class=\"mark\" x=\"{x + width - 8:.1f}\" y=\"{y + 15:.1f}\" "
                f"text-anchor=\"end\">\u26a0</text>") if flagged else ""
        return [f"<g class=\"{' '.join(classes)}\" data-role=\"{_e(role)}\" "
                f"data-task=\"{_e(node.get('task') or '')}\" data-state=\"{_e(state or '')}\" "
                f"data-flagged=\"{'true' if flagged else 'false'}\"><title>{_e(tooltip)}</title>"
                f"<rect x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{width:.1f}\" height=\"{NODE_HEIGHT}\" "
                f"rx=\"6\"/><text x=\"{x + 10:.1f}\" y=\"{y + 19:.1f}\">{_e(label)}</text>"
                f"<text class=\"state\" x=\"{x + 10:.1f}\" y=\"{y + 36:.1f}\">{_e(second)}</text>"
                f"{mark}</g>"]

    return Box(width, NODE_HEIGHT, draw)


def _label(node: dict, replay: dict) -> str:
    """``log_done.s("completed")``: the task's short name, how it is called, its arguments."""
    task = node.get("task")
    described = (replay.get("tasks") or {}).get(task) or {}
    name = described.get("display") or (task or "?").rsplit(".", 1)[-1]
    kind = node.get("type")
    if kind == "called":
        return f"{name}.{node.get('how') or 'delay'}(...)  [called]"
    if kind != "signature":
        return "? (not known statically)"
    args = node.get("args")
    if args is None:
        shown = "..."
    else:
        shown = ", ".join([_value(v) for v in args] + [f"{k}={_value(v)}" for k, v in
                                                         (node.get("kwargs") or {}).items()])
    text = f"{name}.{node.get('via') or 's'}({shown})"
    return text if len(text) <= 48 else text[:45] + "..."


def _value(value: dict) -> str:
    if "literal" in value:
        literal = value["literal"]
        return f"\"{literal}\"" if isinstance(literal, str) else repr(literal)
    return str(value.get("placeholder", "?"))


def _timing(seen: dict) -> str:
    """When the node ran, in seconds from the workflow's start, and for how long."""
    started, ended = seen.get("started_at"), seen.get("ended_at")
    if started is None or ended is None:
        return ""
    return f"+{started:.2f}s, {max(ended - started, 0):.2f}s"


def _chain(parts: List[Box], label: str = "") -> Box:
    if len(parts) == 1:
        return parts[0]
    height = max(part.height for part in parts)
    gap = max(GAP, 6.2 * len(label) + 16)  # room for the label above the arrow
    width = sum(part.width for part in parts) + gap * (len(parts) - 1)
    middle = height / 2

    def draw(x: float, y: float) -> List[str]:
        out, cursor, previous = [], x, None
        for part in parts:
            top = y + middle - part.height / 2
            if previous is not None:
                out.append(_arrow(previous, (cursor + part.entry[0], top + part.entry[1]),
                                  label))
            out.extend(part.draw(cursor, top))
            previous = (cursor + part.exit[0], top + part.exit[1])
            cursor += part.width + gap
        return out

    return Box(width, height, draw)


def _group(node: dict, role: str, replay: dict, observed: Observed) -> Box:
    members = node.get("members")
    if members is None:
        inner = _node({"type": "unknown"}, f"{role}.group[*]", replay, observed)
        inner = Box(inner.width, inner.height, _with_label(inner, "members built at run time"))
        parts = [inner]
    else:
        parts = [_layout(member, f"{role}.group[{i}]", replay, observed)
                 for i, member in enumerate(members)]
    stacked = _stack(parts)
    title = "group (unrolled: one member)" if node.get("unrolled") else "group"
    framed = _frame(title, stacked, "group")
    links = [(f"link ({link.get('how')})",
              _layout(link.get("callback"), f"{role}.link[{i}]", replay, observed))
             for i, link in enumerate(node.get("links") or ())]
    return _hanging(framed, links)


def _with_label(box: Box, text: str):
    def draw(x: float, y: float) -> List[str]:
        return box.draw(x, y) + [f"<text class=\"note\" x=\"{x:.1f}\" y=\"{y + box.height + 12:.1f}\">"
                                 f"{_e(text)}</text>"]
    return draw


def _stack(parts: List[Box]) -> Box:
    """Members one above the other; arrows fan out from the left edge and in to the right."""
    width = max(part.width for part in parts)
    height = sum(part.height for part in parts) + STACK * (len(parts) - 1)

    def draw(x: float, y: float) -> List[str]:
        out, top = [], y
        for part in parts:
            out.append(_line((x - PAD, y + height / 2), (x + part.entry[0], top + part.entry[1])))
            out.append(_line((x + part.exit[0], top + part.exit[1]),
                             (x + width + PAD, y + height / 2)))
            out.extend(part.draw(x, top))
            top += part.height + STACK
        return out

    return Box(width, height, draw)


def _frame(title: str, inner: Box, kind: str) -> Box:
    width = max(inner.width, CHAR * len(title)) + 2 * PAD
    height = inner.height + 2 * PAD + TITLE

    def draw(x: float, y: float) -> List[str]:
        return [f"<g class=\"frame {kind}\"><rect x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{width:.1f}\" "
                f"height=\"{height:.1f}\" rx=\"8\"/><text x=\"{x + PAD:.1f}\" y=\"{y + 14:.1f}\">"
                f"{_e(title)}</text></g>"] + inner.draw(x + PAD, y + PAD + TITLE)

    return Box(width, height, draw,
               entry=(0, PAD + TITLE + inner.entry[1]), exit=(width, PAD + TITLE + inner.exit[1]))


def _hanging(main: Box, callbacks: List[Tuple[str, Box]]) -> Box:
    """Callbacks (links, errbacks) drawn below ``main``, each with a dashed arrow from it."""
    if not callbacks:
        return main
    indent = 40.0
    width = max([main.width] + [indent + box.width for _, box in callbacks])
    height = main.height + sum(box.height + GAP for _, box in callbacks)

    def draw(x: float, y: float) -> List[str]:
        out = main.draw(x, y)
        top = y + main.height + GAP
        for index, (label, box) in enumerate(callbacks):
            start = (x + 16 + 6 * index, y + main.height)
            out.append(_arrow(start, (x + indent, top + box.height / 2), label,
                              dashed=True, elbow=True))
            out.extend(box.draw(x + indent, top))
            top += box.height + GAP
        return out

    return Box(width, height, draw, entry=main.entry, exit=main.exit)


def _arrow(start, end, label: str = "", dashed: bool = False, elbow: bool = False) -> str:
    (x1, y1), (x2, y2) = start, end
    path = f"M{x1:.1f},{y1:.1f} L{x1:.1f},{y2:.1f} L{x2:.1f},{y2:.1f}" if elbow else \
        f"M{x1:.1f},{y1:.1f} C{(x1 + x2) / 2:.1f},{y1:.1f} {(x1 + x2) / 2:.1f},{y2:.1f} " \
        f"{x2:.1f},{y2:.1f}"
    text = ""
    if label:
        tx, ty = ((x1 + 4, (y1 + y2) / 2) if elbow else ((x1 + x2) / 2, min(y1, y2) - 5))
        anchor = "start" if elbow else "middle"
        text = (f"<text class=\"edge-label\" x=\"{tx:.1f}\" y=\"{ty:.1f}\" "
                f"text-anchor=\"{anchor}\">{_e(label)}</text>")
    return (f"<path class=\"edge{' dashed' if dashed else ''}\" d=\"{path}\" "
            f"marker-end=\"url(#arrow)\"/>{text}")


def _line(start, end) -> str:
    (x1, y1), (x2, y2) = start, end
    return (f"<path class=\"edge fan\" d=\"M{x1:.1f},{y1:.1f} C{(x1 + x2) / 2:.1f},{y1:.1f} "
            f"{(x1 + x2) / 2:.1f},{y2:.1f} {x2:.1f},{y2:.1f}\"/>")


def _evidence(result: dict) -> str:
    """What the worker observed, under the graph: the exception and where it was stored,
    every node's state and timing, measurements, notes."""
    evidence = result.get("evidence") or {}
    items = []
    if result.get("reason"):
        items.append(("observed", result["reason"]))
    exception = evidence.get("exception") or {}
    if exception.get("where"):
        items.append(("where", exception["where"]))
    if evidence.get("workflow"):
        items.append(("workflow", evidence["workflow"]))
    for key, value in (evidence.get("measured") or {}).items():
        items.append((key, str(value)))
    for key, value in (evidence.get("timings") or {}).items():
        items.append((key, str(value)))
    for note in evidence.get("notes") or ():
        items.append(("note", note))
    rows = "".join(
        f"<tr><td>{_e(n.get('role') or '')}</td><td>{_e(n.get('task') or '')}</td>"
        f"<td class=\"state-{_e((n.get('state') or '').lower())}\">{_e(n.get('state') or '')}</td>"
        f"<td>{_e(_timing(n))}</td><td>{_e(n.get('exception') or '')}</td></tr>"
        for n in evidence.get("nodes") or ())
    listed = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    table = (f"<table class=\"nodes\"><tr><th>node</th><th>task</th><th>state</th><th>ran</th>"
             f"<th>exception</th></tr>{rows}</table>") if rows else ""
    return f"<dl class=\"evidence\">{listed}</dl>{table}" if listed or table else ""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


MARKERS = ("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
           "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
           "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>")

LEGEND = ("<p class=\"legend\"><span class=\"key flagged\">\u26a0 flagged: the node the finding "
          "is about</span> <span class=\"key state-success\">SUCCESS</span> "
          "<span class=\"key state-failure\">FAILURE</span> <span class=\"key state-pending\">"
          "PENDING (never ran)</span> <span class=\"key\">dashed: link / errback</span></p>")

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin: 0 0 4px; }
.finding { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 12px 16px;
  margin: 0 0 16px; }
.code { font-weight: bold; color: #b00020; } .where { font-family: monospace; }
.status { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: #eee; }
.status.confirmed { background: #fde2e1; color: #8a0010; }
.status.not-reproduced { background: #e6f4ea; } .status.skipped { background: #eee; }
.message { margin: 0 0 8px; } .graph { overflow-x: auto; }
svg text { font: 12px monospace; fill: #222; }
.node rect { fill: #f4f6fb; stroke: #8895b3; stroke-width: 1.5; }
.node .state { fill: #555; font-size: 11px; }
.node.state-success rect { fill: #e6f4ea; stroke: #2e7d32; }
.node.state-failure rect { fill: #fde2e1; stroke: #c62828; }
.node.state-pending rect, .node.state-revoked rect { fill: #f1f1f1; stroke: #9e9e9e;
  stroke-dasharray: 4 3; }
.node.flagged rect { stroke: #d50000; stroke-width: 3.5; }
.node .mark { fill: #d50000; font-size: 14px; }
.frame rect { fill: none; stroke: #90a4ae; stroke-dasharray: 6 4; }
.frame.chord rect { stroke: #6a1b9a; } .frame text { fill: #546e7a; font-size: 11px; }
.edge { fill: none; stroke: #555; stroke-width: 1.4; } .edge.dashed { stroke-dasharray: 5 4; }
.edge.fan { stroke: #90a4ae; } .edge-label, .note { font-size: 10px; fill: #6a1b9a; }
.evidence { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 8px 0; }
.evidence dt { color: #666; } .evidence dd { margin: 0; font-family: monospace; }
table.nodes { border-collapse: collapse; font-size: 12px; }
table.nodes td, table.nodes th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td.state-failure { color: #c62828; font-weight: bold; } td.state-success { color: #2e7d32; }
.legend .key { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 4px;
  border: 1px solid #ccc; font-size: 12px; }
.legend .flagged { border: 2px solid #d50000; } .legend .state-success { background: #e6f4ea; }
.legend .state-failure { background: #fde2e1; } .legend .state-pending { background: #f1f1f1; }
"""
