"""Self-contained pages: one document as blocks, rendered to Markdown and to HTML that works offline.

A document is a list of blocks ``(kind, content)``: ``("h1", text)``, ``("h2", text)``, ``("h3", text)``,
``("p", text)``, ``("ul", [text, ...])``, ``("table", DataFrame)`` and ``("figure", png_name, caption)``, optionally
with a fourth element ``{label: path}`` of other formats of the figure that Markdown links after the caption
(``{"SVG": "fig.svg"}``). Text may use ``**bold**`` and ```code```. Markdown links figures as relative files;
HTML embeds them as base64 PNG. The sweep report (``xorlab.report.builder``) and the comparison page
(``xorlab.report.compare``) are both rendered here, each with its own CSS.

The CSS keeps a page inside a 1280-px viewport: the body is capped below that, figures shrink to the column
(never below the 1100-px column, so a figure is shown at ≥ 60 % of its natural width when drawn ≤ 1800 px wide),
wide tables scroll inside their own box, and long unbreakable words (paths, run ids) wrap instead of pushing
the page sideways.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xorlab.analysis.text import md_text

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;line-height:1.45;color:#222;overflow-wrap:anywhere}
.wide{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right;white-space:nowrap;overflow-wrap:normal}
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}figure{margin:1.5em 0}
img{max-width:100%;height:auto}figcaption{font-style:italic;color:#444}code{background:#f3f3f3;padding:0 0.2em}"""


HEADINGS = {"h1": 1, "h2": 2, "h3": 3}


_CODE = re.compile(
    r"(?<![`\\])(`+)(?!`)(.+?)(?<!`)\1(?!`)"
)  # a code span (fence closed by the same fence), not an escaped backtick
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # Markdown's backslash escapes of ASCII punctuation


def inline_html(text: str) -> str:
    """``text`` (the inline Markdown these pages write) as HTML: code spans (any fence length, content shown
    exactly), ``**bold**``, backslash-escaped punctuation as the character; everything else escaped."""
    spans: list[str] = []

    def code(m: re.Match[str]) -> str:
        body = m.group(2)
        if len(body) > 2 and body[0] == body[-1] == " " and body.strip():  # CommonMark strips one padding space
            body = body[1:-1]
        spans.append(f"<code>{html.escape(body, quote=False)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE.sub(code, str(text).replace("\x00", ""))
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = _ESCAPED.sub(r"\1", text)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _md_cell(value: object) -> str:
    """A table cell: its text with Markdown markup and raw HTML escaped (``xorlab.analysis.text.md_text``)."""
    return md_text(value)


def to_markdown(blocks: Sequence[tuple]) -> str:
    """GitHub-flavoured Markdown; figures as relative links to their PNG files."""
    out = []
    for kind, *rest in blocks:
        if kind in HEADINGS:
            out.append(f"{'#' * HEADINGS[kind]} {rest[0]}")
        elif kind == "p":
            out.append(str(rest[0]))
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            t: pd.DataFrame = rest[0]
            lines = ["| " + " | ".join(_md_cell(c) for c in t.columns) + " |", "|" + "---|" * t.shape[1]]
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.itertuples(index=False)]
            out.append("\n".join(lines))
        elif kind == "figure":
            name, caption, *also = rest
            links = "".join(f" ([{label}]({path}))" for label, path in (also[0] if also else {}).items())
            out.append(f"![{caption}]({name})\n\n*{caption}*{links}")
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[tuple], figure_dir: str | Path, css: str = CSS) -> str:
    """One self-contained HTML page (inline ``css``, figures from ``figure_dir`` embedded as base64 PNG)."""
    body = []
    for kind, *rest in blocks:
        if kind in HEADINGS or kind == "p":
            body.append(f"<{kind}>{inline_html(rest[0])}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            t = rest[0]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                for r in t.itertuples(index=False)
            )
            body.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
        elif kind == "figure":
            name, caption, *_ = rest
            data = base64.b64encode((Path(figure_dir) / name).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{inline_html(caption)}</figcaption></figure>"
            )
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    title = html.escape(str(blocks[0][1])) if blocks and blocks[0][0] == "h1" else "xorlab"
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
        f"<style>{css}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
