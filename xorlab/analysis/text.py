"""Foreign text made safe for where it is shown: a terminal line, a Markdown code span, a Markdown table cell.

Store paths, session records (host, command, commit), run labels and ``--where`` texts come from users, other
machines or files anyone could have edited. Printed raw, control characters drive the terminal (clear the
screen, set the window title, write the clipboard: ``ESC ] 52``), bidirectional overrides reorder what is read,
and bytes that are not UTF-8 (a path the OS gave as bytes) cannot even be encoded. Placed raw in Markdown, a
backtick closes a code span early and ``<script>`` passes through as HTML.

- ``terminal(text)``: control characters (C0, DEL, C1), bidi controls and undecodable bytes become visible
  escapes (``\\x1b``, ``\\u202e``, ``\\xff``), so what is printed is what the text holds.
- ``md_code(text)``: a code span that holds ``text`` exactly (a backtick fence longer than any run of backticks
  inside, CommonMark's rule), its content also ``terminal``-escaped and one line.
- ``md_text(text)``: text for a Markdown table cell or prose, with everything that could start markup or raw
  HTML backslash-escaped (``\\ ` * < > & ~ $ |``, a ``_`` at a word's edge, ``](`` of a link); letters, digits,
  intraword ``_`` and brackets that make no link are left as they are, so ordinary labels read unchanged.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    o = ord(match.group())
    if 0xDC80 <= o <= 0xDCFF:  # a byte the OS gave that is not UTF-8 (Python's surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def terminal(text: object) -> str:
    """``text`` with control characters, bidi controls and undecodable bytes shown as escapes (one line)."""
    return _UNSAFE.sub(_escape, str(text))


def md_code(text: object) -> str:
    """A Markdown code span showing ``text`` exactly, whatever backticks it holds."""
    body = terminal(text)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith(("`", " ")) or body.endswith(("`", " ")) else ""
    return f"{fence}{pad}{body}{pad}{fence}"


_MD_SPECIAL = re.compile(r"[\\`*<>&~$|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|\](?=[(\[])")


def md_text(text: object) -> str:
    """``text`` for a Markdown table cell or sentence: markup and raw HTML escaped, one line."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(), terminal(text))
