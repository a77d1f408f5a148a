"""Foreign text where it is shown (``xorlab.analysis.text``): a terminal never obeys a store's control characters,
and Markdown shows a path or a query exactly. Markdown is checked with an independent CommonMark renderer
(markdown-it-py), and the pages' own HTML renderer must agree with it."""

from __future__ import annotations

import html
import os

import markdown_it
import pytest

from xorlab.analysis.text import md_code, md_text, terminal
from xorlab.report.pages import inline_html, to_html, to_markdown

HOSTILE = [
    "runs/a`b",
    "``x",
    "x`",
    "a`` `b",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a|b",
    "**bold** _it_ [link](http://x) ![img](y) $x$ &amp; \\ ~s~ # h",
    "line\nbreak",
    "\x1b]52;c;ZXZpbA==\x07clip",
    os.fsdecode(b"caf\xe9"),
]
MD = markdown_it.MarkdownIt("commonmark").enable("table")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),  # clear screen, window title
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),  # clipboard write
        ("a\u202eb", "a\\u202eb"),  # right-to-left override
        ("tab\there\r\n", "tab\\x09here\\x0d\\x0a"),
        ("\x9b31m", "\\x9b31m"),  # C1 control sequence introducer
        (os.fsdecode(b"/data/caf\xe9"), "/data/caf\\xe9"),  # a non-UTF-8 byte the OS gave
        ("plain ünïcode ≥ 0.1 `x`", "plain ünïcode ≥ 0.1 `x`"),
    ],
)
def test_terminal_shows_control_characters_instead_of_obeying_them(raw, shown):
    assert terminal(raw) == shown
    assert terminal(raw).encode("utf-8")  # always encodable, whatever bytes the path held


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_span_shows_the_text_exactly(text):
    inner = html.escape(terminal(text), quote=False)
    assert MD.renderInline("in " + md_code(text)) == f"in <code>{inner}</code>"
    assert inline_html("in " + md_code(text)) == f"in <code>{inner}</code>"  # the pages' HTML agrees


@pytest.mark.parametrize("text", HOSTILE)
def test_a_table_cell_or_sentence_shows_the_text_exactly(text):
    want = html.escape(terminal(text), quote=False)
    cell = MD.render("| h |\n|---|\n| " + md_text(text) + " |").split("<td>")[1].split("</td>")[0]
    assert cell == want
    assert MD.renderInline(md_text(text)) == want
    assert inline_html(md_text(text)) == want


def test_pages_keep_hostile_text_inert(tmp_path):
    import pandas as pd

    blocks = [
        ("h1", "t"),
        ("p", "Inputs: " + md_code("runs/`<script>x</script>`")),
        ("table", pd.DataFrame({"sweep": ["a|b<script>y</script>"], "n": [1]})),
    ]
    md = to_markdown(blocks)
    assert "<script>" not in MD.render(md)
    page = to_html(blocks, tmp_path)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
