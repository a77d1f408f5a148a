"""``--where``: a small query language over the run table that cannot run code.

    cond = parse("lr >= 0.1 and init_label not in ['zeros', 'uniform'] and steps_to_solve * lr < 50")
    kept = runs[mask(cond, runs)]            # or: where(runs, text)
    cond.columns                             # {'lr', 'init_label', 'steps_to_solve'}
    to_arrow(cond)                           # the same condition as a pyarrow.compute Expression

The text reads like pandas' ``query`` (the filter language the harness's users know), but it is never handed to
pandas or to Python's ``eval``: Python's own parser (``ast.parse``, which only builds a tree) turns it into a
syntax tree, and that tree is converted node by node into the small tree below. Only these are allowed:

- column names (the frame's columns; names with ``__`` are refused before any lookup),
- literals: numbers, strings, ``True``/``False``, and ``None`` for null (``steps_to_solve == None``: runs that
  never solved; ``!= None``: those that did),
- comparisons ``== != < <= > >=`` (chains like ``0.1 <= lr < 1`` are ``and``-ed pairs),
- ``in`` / ``not in`` a list or tuple of literals,
- ``and``, ``or``, ``not`` (also spelled ``&``, ``|``, ``~``, between conditions),
- arithmetic ``+ - * / // % **`` and unary minus.

Anything else — attribute access, calls, subscripts, ``@`` variables, lambdas, comprehensions, f-strings,
walrus, backticks — is a ``QueryError`` whose one line names what is not allowed. A tree is evaluated by
``mask`` on a pandas frame (nulls never match), or translated by ``to_arrow`` into a ``pyarrow.compute``
expression for out-of-core readers (``pyarrow.dataset`` / ``Table.filter``): the nodes are plain frozen
dataclasses, so another backend (e.g. SQL for DuckDB) is one more walk over them.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 2000  # characters: a condition over a run table is a line, not a program
MAX_DEPTH = 60  # nesting of the tree; deeper is refused before Python's parser could overflow its stack

ALLOWED = (
    "allowed: column names, numbers, strings, True/False/None, comparisons (== != < <= > >=), "
    "in / not in [list], and/or/not, + - * / // % **"
)


class QueryError(ValueError):
    """A ``--where`` text that is not a condition of the language; ``str`` is one line."""


# ----------------------------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Literal:
    value: bool | int | float | str | None


@dataclass(frozen=True)
class Arith:
    op: str  # + - * / // % **
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class Compare:
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    operand: Node
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Column | Literal | Arith | Neg | Compare | In | BoolOp | Not
CONDITIONS = (Compare, In, BoolOp, Not)


@dataclass(frozen=True)
class Query:
    """A parsed condition: its source ``text``, the ``tree`` and the ``columns`` it reads."""

    text: str
    tree: Node
    columns: frozenset[str]


# ----------------------------------------------------------------------------------------------- parsing
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_BOOL_BITS = {ast.BitAnd: "and", ast.BitOr: "or"}
_WHAT = {  # how the refused syntax is named in the error
    ast.Attribute: "attribute access ('.')",
    ast.Call: "function calls",
    ast.Subscript: "subscripts ('[...]' after a value)",
    ast.Lambda: "lambdas",
    ast.IfExp: "'if ... else' expressions",
    ast.NamedExpr: "assignments (':=')",
    ast.JoinedStr: "f-strings",
    ast.Starred: "'*' unpacking",
    ast.Dict: "dicts",
    ast.Set: "sets outside 'in'",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


def _refuse(what: str) -> QueryError:
    return QueryError(f"{what} not allowed; {ALLOWED}")


def parse(text: str) -> Query:
    """Parse a ``--where`` text into a ``Query``; ``QueryError`` (one line) if it is not one.

    Nothing in ``text`` is executed: ``ast.parse`` only builds a syntax tree, and every node of it is checked
    against the whitelist above before anything looks at a frame.
    """
    if not isinstance(text, str):
        raise QueryError(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise QueryError("empty condition")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"{len(text):,} characters; at most {MAX_LENGTH:,} are allowed")
    if "@" in _outside_strings(text):
        raise _refuse("'@' (local variables) is")
    if "`" in _outside_strings(text):
        raise _refuse("backtick-quoted names are")
    if _nesting(text) > MAX_DEPTH:
        raise QueryError(f"nested more than {MAX_DEPTH} levels deep")
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise QueryError(f"invalid syntax{where}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a null byte, absurd nesting
        raise QueryError(f"cannot be parsed ({type(exc).__name__})") from None
    columns: set[str] = set()
    tree = _node(body, columns, 0)
    if not isinstance(tree, CONDITIONS):
        raise QueryError("not a condition (a comparison, 'in', and/or/not); e.g. lr >= 0.1 and status == 'stuck'")
    return Query(text, tree, frozenset(columns))


def _outside_strings(text: str) -> str:
    """``text`` with the contents of quoted strings removed (so '@' or '`' inside a string literal is fine)."""
    out, quote, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if quote is None:
            if ch in "'\"":
                quote = ch
            else:
                out.append(ch)
        elif ch == "\\":
            i += 1
        elif ch == quote:
            quote = None
        i += 1
    return "".join(out)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in _outside_strings(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        deepest = max(deepest, depth)
    return deepest


def _node(n: ast.AST, columns: set[str], depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise QueryError(f"nested more than {MAX_DEPTH} levels deep")
    d = depth + 1
    if isinstance(n, ast.Name):
        if "__" in n.id:
            raise _refuse(f"the name {n.id!r} (names with '__') is")
        if n.id in ("True", "False", "None"):  # Python parses these as constants; kept for clarity
            return Literal({"True": True, "False": False, "None": None}[n.id])
        columns.add(n.id)
        return Column(n.id)
    if isinstance(n, ast.Constant):
        if isinstance(n.value, bool | int | float | str) or n.value is None:
            return Literal(n.value)
        raise _refuse(f"{type(n.value).__name__} literals are")
    if isinstance(n, ast.UnaryOp):
        inner = _node(n.operand, columns, d)
        if isinstance(n.op, ast.USub):
            value = inner.value if isinstance(inner, Literal) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return Literal(-value)
            return Neg(inner)
        if isinstance(n.op, ast.UAdd):
            return inner
        if isinstance(n.op, ast.Not | ast.Invert):
            if isinstance(n.op, ast.Invert) and not isinstance(inner, CONDITIONS):
                raise _refuse("'~' on a value (it means 'not' and needs a condition) is")
            return Not(inner)
    if isinstance(n, ast.BoolOp):
        return BoolOp("and" if isinstance(n.op, ast.And) else "or", tuple(_node(v, columns, d) for v in n.values))
    if isinstance(n, ast.BinOp):
        if type(n.op) in _BOOL_BITS:
            left, right = _node(n.left, columns, d), _node(n.right, columns, d)
            if not (isinstance(left, CONDITIONS) and isinstance(right, CONDITIONS)):
                raise _refuse(
                    "'&' / '|' between values (they mean and/or: put comparisons in parentheses, or write and/or) is"
                )
            return BoolOp(_BOOL_BITS[type(n.op)], (left, right))
        if type(n.op) in _ARITH:
            return Arith(_ARITH[type(n.op)], _node(n.left, columns, d), _node(n.right, columns, d))
        if isinstance(n.op, ast.MatMult):
            raise _refuse("'@' is")
        raise _refuse(f"the operator {type(n.op).__name__} is")
    if isinstance(n, ast.Compare):
        pairs: list[Node] = []
        left = _node(n.left, columns, d)
        for op, comparator in zip(n.ops, n.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                pairs.append(In(left, _values(comparator, columns), isinstance(op, ast.NotIn)))
                left = None  # type: ignore[assignment]  # 'a in [..] < b' has no meaning: refused below
                continue
            if left is None:
                raise _refuse("a comparison chained after 'in' is")
            right = _node(comparator, columns, d)
            if type(op) not in _CMP:
                raise _refuse("'is' / 'is not' (use == / !=) is")
            pairs.append(Compare(_CMP[type(op)], left, right))
            left = right
        return pairs[0] if len(pairs) == 1 else BoolOp("and", tuple(pairs))
    for kind, what in _WHAT.items():
        if isinstance(n, kind):
            raise _refuse(f"{what} are" if what.endswith("s") or what.endswith(")") else f"{what} is")
    raise _refuse(f"{type(n).__name__} is")


def _values(n: ast.AST, columns: set[str]) -> tuple[Literal, ...]:
    """The right side of ``in``: a list, tuple or set of literals."""
    if not isinstance(n, ast.List | ast.Tuple | ast.Set):
        raise _refuse("'in' followed by anything but a [list] of literals is")
    out = []
    for v in n.elts:
        node = _node(v, columns, MAX_DEPTH - 1)
        if not isinstance(node, Literal):
            raise _refuse("'in' lists of anything but literals are")
        out.append(node)
    return tuple(out)


# ----------------------------------------------------------------------------------------------- pandas
def _pandas_ops() -> dict[str, Callable[[Any, Any], Any]]:
    return {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": operator.truediv,
        "//": operator.floordiv,
        "%": operator.mod,
        "**": operator.pow,
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }


def mask(query: Query | str, frame: Any) -> Any:
    """Boolean Series over ``frame``'s rows: True where the condition holds (null comparisons are False).

    ``QueryError`` (one line) for a column the frame lacks or values that cannot be compared (text with numbers).
    """
    import numpy as np
    import pandas as pd

    q = parse(query) if isinstance(query, str) else query
    missing = sorted(q.columns - set(map(str, frame.columns)))
    if missing:
        known = ", ".join(sorted(map(str, frame.columns)))
        raise QueryError(f"unknown column {missing[0]!r}; the runs have: {known}")
    ops = _pandas_ops()

    def ev(n: Node) -> Any:
        if isinstance(n, Column):
            return frame[n.name]
        if isinstance(n, Literal):
            return pd.NA if n.value is None else n.value
        if isinstance(n, Neg):
            return -ev(n.operand)
        if isinstance(n, Arith):
            left, right = ev(n.left), ev(n.right)
            if not isinstance(left, pd.Series) and not isinstance(right, pd.Series):
                return _scalar_arith(n.op, left, right)
            return ops[n.op](left, right)
        if isinstance(n, Compare):
            if (null := _null_test(n)) is not None:
                value, negate = null
                isna = pd.Series(pd.isna(ev(value)), index=frame.index)
                return ~isna if negate else isna
            out = ops[n.op](ev(n.left), ev(n.right))
            if n.op == "!=":  # as pandas: a null differs from every value
                return _boolean(out, frame.index, null=True)
            return _boolean(out, frame.index)
        if isinstance(n, In):
            values = [v.value for v in n.values if v.value is not None]
            left = ev(n.operand)
            hit = left.isin(values) if isinstance(left, pd.Series) else pd.Series(left in values, index=frame.index)
            hit = _boolean(hit, frame.index)
            return ~hit if n.negate else hit  # as pandas: a null is not in any list
        if isinstance(n, Not):
            return ~_boolean(ev(n.operand), frame.index)
        if isinstance(n, BoolOp):
            parts = [_boolean(ev(o), frame.index) for o in n.operands]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if n.op == "and" else (out | p)
            return out
        raise AssertionError(f"unknown node {n!r}")  # parse() builds only the nodes above

    try:
        with np.errstate(all="ignore"):
            result = ev(q.tree)
    except QueryError:
        raise
    except (TypeError, ValueError, ArithmeticError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise QueryError(f"cannot evaluate on the runs: {reason}") from None
    return _boolean(result, frame.index)


def _scalar_arith(op: str, left: Any, right: Any) -> Any:
    """Arithmetic between two literals, in float64 for powers so ``10 ** 10 ** 10`` cannot hang."""
    import numpy as np

    if isinstance(left, str) or isinstance(right, str):
        raise QueryError(f"arithmetic on text ({left!r} {op} {right!r}) is not allowed")
    if op == "**":
        return float(np.float64(left) ** np.float64(right))
    return _pandas_ops()[op](left, right)


def _null_test(n: Compare) -> tuple[Node, bool] | None:
    """(the other side, negated) of ``x == None`` / ``x != None``; ``QueryError`` for ``x < None``."""
    for side, other in ((n.left, n.right), (n.right, n.left)):
        if isinstance(side, Literal) and side.value is None:
            if n.op not in ("==", "!="):
                raise QueryError(f"None (null) can only be compared with == or !=, not {n.op}")
            return other, n.op == "!="
    return None


def _boolean(values: Any, index: Any, null: bool = False) -> Any:
    import pandas as pd

    if not isinstance(values, pd.Series):
        if not isinstance(values, bool):
            raise QueryError("not a condition (a comparison, 'in', and/or/not)")
        return pd.Series(values, index=index)
    if values.dtype == bool:
        return values
    if pd.api.types.is_bool_dtype(values.dtype):  # nullable: BooleanDtype, bool[pyarrow]
        return values.fillna(null).astype(bool)
    if values.dtype == object and values.map(lambda v: isinstance(v, bool) or v is pd.NA or v is None).all():
        return values.map(lambda v: v is True).astype(bool)
    raise QueryError("not a condition: a number or text where a comparison is expected")


def where(frame: Any, query: Query | str) -> Any:
    """The rows of ``frame`` matching the condition (a copy; index kept)."""
    return frame[mask(query, frame)]


# ----------------------------------------------------------------------------------------------- pyarrow
def to_arrow(query: Query | str) -> Any:
    """The condition as a ``pyarrow.compute.Expression`` over the stored columns (``Table.filter``,
    ``pyarrow.dataset`` scans). Same semantics as ``mask``: nulls never match, ``/`` is true division.
    Derived columns (``init_label``, ``sweep``) exist only in frames; a caller adds them or filters in pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    q = parse(query) if isinstance(query, str) else query

    def num(e: Any) -> Any:
        return e.cast(pa.float64())

    arith = {
        "+": pc.add,
        "-": pc.subtract,
        "*": pc.multiply,
        "/": lambda a, b: pc.divide(num(a), num(b)),
        "//": lambda a, b: pc.floor(pc.divide(num(a), num(b))),
        "%": lambda a, b: pc.subtract(num(a), pc.multiply(pc.floor(pc.divide(num(a), num(b))), num(b))),
        "**": lambda a, b: pc.power(num(a), num(b)),
    }
    cmp = {
        "==": pc.equal,
        "!=": pc.not_equal,
        "<": pc.less,
        "<=": pc.less_equal,
        ">": pc.greater,
        ">=": pc.greater_equal,
    }

    def ev(n: Node) -> Any:
        if isinstance(n, Column):
            return pc.field(n.name)
        if isinstance(n, Literal):
            return pc.scalar(n.value)
        if isinstance(n, Neg):
            return pc.negate(ev(n.operand))
        if isinstance(n, Arith):
            return arith[n.op](ev(n.left), ev(n.right))
        if isinstance(n, Compare):
            if (null := _null_test(n)) is not None:
                value, negate = null
                return pc.is_valid(ev(value)) if negate else pc.is_null(ev(value))
            return pc.coalesce(cmp[n.op](ev(n.left), ev(n.right)), pc.scalar(n.op == "!="))
        if isinstance(n, In):
            values = [v.value for v in n.values if v.value is not None]
            operand = ev(n.operand)
            hit = pc.coalesce(pc.is_in(operand, value_set=pa.array(values)), pc.scalar(False))
            return pc.invert(hit) if n.negate else hit
        if isinstance(n, Not):
            return pc.invert(ev(n.operand))
        if isinstance(n, BoolOp):
            out = ev(n.operands[0])
            for o in n.operands[1:]:
                out = pc.and_kleene(out, ev(o)) if n.op == "and" else pc.or_kleene(out, ev(o))
            return out
        raise AssertionError(f"unknown node {n!r}")

    return ev(q.tree)
