"""Canvas expressions become the trees Celery builds, and each signature gets what Celery passes."""
from __future__ import annotations

from celery_chain_lint.workflow.model import (
    ChainNode,
    ChordNode,
    GroupNode,
    SignatureNode,
)
from projects import make_project

HEADER = """\
from celery import Celery, chain, group, chord, signature
app = Celery("w")

@app.task
def a(x):
    return x

@app.task
def b(x, y):
    return x

@app.task
def none():
    return 1
"""


def _workflows(tmp_path, body):
    project = make_project(tmp_path, {"w.py": HEADER + body})
    return project, project.workflows


def _shape(node):
    if isinstance(node, SignatureNode):
        return node.task.display + (".si" if node.immutable else "")
    if isinstance(node, ChainNode):
        return ["chain"] + [_shape(s) for s in node.steps]
    if isinstance(node, GroupNode):
        tag = "group1" if node.unrolled else "group"
        return [tag] + [_shape(m) for m in node.members or ()]
    if isinstance(node, ChordNode):
        return ["chord", _shape(node.header), _shape(node.body)]
    return type(node).__name__


def test_pipe_and_chain_flatten_and_group_pipe_is_a_chord(tmp_path):
    _, workflows = _workflows(tmp_path, (
        "x = a.s(1) | b.s(2) | chain(a.s(), a.s())\n"
        "y = group(a.s(1), a.s(2)) | b.s(1)\n"
        "z = chain(a.s(1), group([a.s()]), b.s(2))\n"
        "w = group([a.s(1)]) | a.s()\n"
    ))
    shapes = [_shape(w.canvas) for w in workflows]
    assert shapes == [
        ["chain", "a", "b", "a", "a"],
        ["chord", ["group", "a", "a"], "b"],
        ["chain", "a", ["group1", "a"], "b"],
        ["chord", ["group", "a"], "a"],
    ]


def test_chord_forms_and_set_immutable(tmp_path):
    _, workflows = _workflows(tmp_path, (
        "chord([a.s(1), a.s(2)])(b.s(3))\n"
        "c = chord([a.s(1)], a.s())\n"
        "s = a.s().set(immutable=True)\n"
        "n = signature('w.b', args=(1, 2), immutable=True)\n"
    ))
    assert [_shape(w.canvas) for w in workflows] == [
        ["chord", ["group", "a", "a"], "b"],
        ["chord", ["group", "a"], "a"],
        "a.si",
        "b.si",
    ]
    assert workflows[0].applied and not workflows[1].applied


def test_unknowable_canvases_report_nothing(tmp_path):
    project, workflows = _workflows(tmp_path, (
        "def f(sigs, extra):\n"
        "    chain(*sigs).delay()\n"
        "    chain(a.s(1).clone(), b.s(2)).delay()\n"
        "    b.s(*extra).delay()\n"
        "    b.apply_async(extra)\n"
        "    group(a.s(i) for i in range(3)).delay()\n"
        "    steps = []\n"
        "    for i in range(3):\n"
        "        steps.append(a.s(i))\n"
        "        steps.insert(0, b.s(i))\n"
        "    chain(steps).delay()\n"
    ))
    assert project.argument_problems == []
    # chain(*sigs) and chain(steps) are no workflow at all (a list changed otherwise than by
    # append); the splats leave arguments unknown.
    offset = HEADER.count("\n")
    shapes = [(w.expr.span.line - offset, _shape(w.canvas)) for w in workflows]
    assert shapes == [(3, ["chain", "UnknownNode", "b"]), (4, "b"), (5, "b"), (6, ["group"]),
                      (9, "a"), (10, "b")]
    assert [w.canvas.args_known for w in workflows[1:3]] == [False, True]
    assert workflows[2].application.args is None


def test_a_list_built_by_appends_in_a_loop_holds_members_of_their_shapes(tmp_path):
    """Issue 16: ``steps.append(a.s(i))`` in a loop: the list holds any number of ``a.s(<i>)``;
    a chain of them passes each link's result to the next (at least two links)."""
    project, workflows = _workflows(tmp_path, (
        "def f(items):\n"
        "    steps = []\n"
        "    for i in items:\n"
        "        steps.append(a.s(i))\n"
        "    chain(steps).delay()\n"
        "    members = [none.s()]\n"
        "    for i in items:\n"
        "        members.append(b.s(i))\n"
        "    group(members).delay()\n"
    ))
    offset = HEADER.count("\n")
    found = sorted((p.invocation.signature.span.line - offset, p.error.kind)
                   for p in project.argument_problems)
    assert found == [(4, "too-many"), (8, "missing")]  # a(<result>, i); b(i) misses y
    group = workflows[-1].canvas
    assert group.members is None and [_shape(m) for m in group.shapes] == ["none", "b"]


def test_first_link_of_a_returned_chain_is_partial(tmp_path):
    project, _ = _workflows(tmp_path, (
        "def build():\n"
        "    return chain(b.s(1), a.s())\n"          # may get args when applied: fine
        "def build_too_many():\n"
        "    return chain(b.s(1, 2, 3), a.s())\n"    # applying only prepends: wrong now
        "def run():\n"
        "    chain(b.s(1), a.s()).delay()\n"         # applied with nothing: missing y
        "def run_with_args():\n"
        "    chain(b.s(2), a.s()).delay(1)\n"        # b(1, 2)
    ))
    found = sorted((p.invocation.signature.span.line, p.error.kind)
                   for p in project.argument_problems)
    offset = HEADER.count("\n")
    assert found == [(offset + 4, "too-many"), (offset + 6, "missing")]


def test_signature_in_a_variable_is_reported_where_it_is_created(tmp_path):
    project, _ = _workflows(tmp_path, (
        "def run():\n"
        "    done = a.s()\n"
        "    step = b.s(1)\n"
        "    (step | done).delay()\n"
    ))
    offset = HEADER.count("\n")
    problems = project.argument_problems
    assert [(p.invocation.signature.span.line, p.error.kind) for p in problems] == \
        [(offset + 3, "missing")]


def test_reassignment_in_a_branch_makes_a_variable_unknown(tmp_path):
    # One path gives a value the builder does not know: the variable is unknown.
    project, _ = _workflows(tmp_path, (
        "def run(flag, other):\n"
        "    step = a.s(1)\n"
        "    if flag:\n"
        "        step = other\n"
        "    chain(none.s(), step).delay()\n"
        "    flow = a.s(1)\n"
        "    for _ in range(2):\n"
        "        flow = flow | a.s(2)\n"
        "    flow.delay()\n"
    ))
    assert project.argument_problems == []


def test_every_path_through_branches_is_followed_when_each_gives_a_canvas(tmp_path):
    """Issue 16: a variable the branches of an ``if`` give different canvases is each of
    them; a problem on one path is reported (before, the variable was unknown)."""
    project, _ = _workflows(tmp_path, (
        "def run(flag, kind):\n"
        "    step = a.s(1)\n"                                # a(<result>, 1): too many
        "    if flag:\n"
        "        step = b.s(1)\n"                            # b(<result>, 1): fine
        "    chain(none.s(), step).delay()\n"
        "    flow = none.s()\n"
        "    if kind == 1:\n"
        "        flow |= b.s(2)\n"
        "    elif kind == 2:\n"
        "        flow |= a.s(3)\n"                           # a(<result>, 3): too many
        "    else:\n"
        "        raise ValueError(kind)\n"
        "    flow.delay()\n"
    ))
    offset = HEADER.count("\n")
    found = sorted((p.invocation.signature.span.line, p.error.kind)
                   for p in project.argument_problems)
    assert found == [(offset + 2, "too-many"), (offset + 10, "too-many")]


def test_group_link_is_an_immutable_clone_and_link_gets_the_result(tmp_path):
    project, _ = _workflows(tmp_path, (
        "def run():\n"
        "    a.apply_async((1,), link=b.s(2))\n"          # b(<result>, 2): fine
        "    a.apply_async((1,), link=none.s())\n"        # none(<result>): too many
        "    g = group(a.s(1), a.s(2))\n"
        "    g.link(a.s())\n"                             # a() immutable clone: missing
    ))
    offset = HEADER.count("\n")
    found = sorted((p.invocation.signature.span.line, p.error.kind, p.si_was_meant)
                   for p in project.argument_problems)
    assert found == [(offset + 3, "too-many", True), (offset + 5, "missing", False)]


def test_inline_errback_arguments_are_not_cured_by_si(tmp_path):
    project, _ = _workflows(tmp_path, (
        "@app.task\n"
        "def on_fail(request, exc, tb):\n"
        "    return None\n"
        "def run():\n"
        "    a.apply_async((1,), link_error=on_fail.s('extra'))\n"
    ))
    problems = project.argument_problems
    assert [(p.error.kind, p.si_was_meant) for p in problems] == [("too-many", False)]


def test_comprehension_headers_are_members_of_a_shape_count_unknown(tmp_path):
    """Issue 16: ``group(a.s(x) for x in xs)`` has members of one shape, their count unknown;
    the comprehension's variable is an argument of unknown value (its number is known)."""
    _, workflows = _workflows(tmp_path, (
        "def f(xs, sigs):\n"
        "    g1 = group(a.s(x) for x in xs)\n"
        "    g2 = chord([b.s(x, 1) for x in xs], a.s())\n"
        "    g3 = group([a.s(1), *(b.s(x) for x in xs)])\n"
        "    g4 = group([a.s(1), *sigs])\n"
        "    g5 = group({x: a.s(x) for x in xs})\n"
    ))
    g1, g2, g3, g4, g5 = (w.canvas for w in workflows)
    assert g1.members is None and g1.all_shapes and [_shape(s) for s in g1.shapes] == ["a"]
    assert g1.shapes[0].args[0].text == "x" and g1.shapes[0].args_known
    assert isinstance(g2, ChordNode) and [_shape(s) for s in g2.header.parts] == ["b"]
    assert g3.members is None and g3.all_shapes and [_shape(s) for s in g3.parts] == ["a", "b"]
    assert g4.members is None and not g4.all_shapes and [_shape(s) for s in g4.parts] == ["a"]
    assert g5.members is None and g5.parts == ()
