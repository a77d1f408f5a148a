"""``--where``: the whitelisted query language (``xorlab.analysis.query``): what it accepts, what it refuses, and
that no hostile text is ever executed (pandas' ``query`` ran attribute access and calls)."""

from __future__ import annotations

import os
import sys

import pandas as pd
import pyarrow as pa
import pytest

from xorlab.analysis.query import ALLOWED, QueryError, mask, parse, to_arrow, where


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lr": [0.1, 1.0, 2.0, 0.5],
            "seed": [0, 1, 2, 3],
            "status": ["solved", "stuck", "stuck", "slow"],
            "steps_to_solve": pd.array([10, None, 30, None], dtype="Int64"),
            "init_path": pd.array(["a.npz", None, "b.npz", "c.npz"], dtype="string"),
            "init_label": ["notebook", "zeros", "normal(std=0.1)", "notebook"],
        }
    )


CASES = {  # query -> seeds kept (pandas' own query agrees wherever it can run them: checked below)
    "lr >= 0.5 and status == 'stuck'": [1, 2],
    "status in ['solved', 'slow']": [0, 3],
    "status not in ('solved',)": [1, 2, 3],
    "0.1 < lr <= 1": [1, 3],
    "steps_to_solve > 5": [0, 2],
    "not (lr > 1)": [0, 1, 3],
    "(lr > 1) | (seed == 0)": [0, 2],
    "~(lr > 1) & (seed > 0)": [1, 3],
    "seed % 2 == 0 or seed ** 2 > 8": [0, 2, 3],
    "lr * 2 / 4 == 0.5": [1],
    "seed // 2 == 1": [2, 3],
    "-seed < -1": [2, 3],
    "init_path == 'a.npz'": [0],
    "init_path != 'a.npz'": [1, 2, 3],
    "init_label == 'normal(std=0.1)'": [2],
    "status == 'a@b' or init_label == 'x`y'": [],  # '@' and '`' inside strings are text
    "steps_to_solve == None": [1, 3],
    "steps_to_solve != None and lr < 1": [0],
    "lr == 1e0": [1],
}


@pytest.mark.parametrize("text", sorted(CASES))
def test_conditions_select_what_pandas_would(runs, text):
    assert runs.loc[mask(text, runs), "seed"].tolist() == CASES[text]
    if "None" not in text:  # pandas has no null comparison; everything else reads as in pandas' query
        assert runs.query(text, engine="python")["seed"].tolist() == CASES[text]


@pytest.mark.parametrize("text", sorted(t for t in CASES if "init_label" not in t))
def test_the_same_tree_filters_an_arrow_table_alike(runs, text):
    table = pa.Table.from_pandas(runs.drop(columns="init_label"), preserve_index=False)
    assert table.filter(to_arrow(text)).column("seed").to_pylist() == CASES[text]


def test_parse_names_the_columns_it_reads():
    q = parse("lr >= 0.1 and init_label not in ['zeros'] and steps_to_solve * lr < 50")
    assert q.columns == {"lr", "init_label", "steps_to_solve"}
    assert where(pd.DataFrame({"lr": [0.05, 0.2]}), "lr > 0.1")["lr"].tolist() == [0.2]


REFUSED = {
    "lr.to_csv('pwned.csv') == 0": "function calls",
    "status.str.len() > 0": "function calls",
    "lr.__class__ == 1": "attribute access",
    "__import__('os').system('touch pwned') == 0": "function calls",
    "__builtins__ == 1": "'__builtins__'",
    "lr[0] > 1": "subscripts",
    "@os == 1": "'@'",
    "lr @ lr > 1": "'@'",
    "(lambda: 1) == 1": "lambdas",
    "(lr if lr else 1) > 0": "'if ... else'",
    "(x := 1) == 1": "':='",
    "f'{lr}' == 'a'": "f-strings",
    "[s for s in status] == 1": "comprehensions",
    "{'a': 1} == 1": "dicts",
    "`lr` > 1": "backtick",
    "lr is None": "'is'",
    "status in status": "'in' followed by",
    "lr in [seed]": "literals",
    "lr > 1 & seed == 2": "'&' / '|' between values",
    "~lr > 1": "'~' on a value",
    "b'x' == lr": "bytes",
}


@pytest.mark.parametrize("text", sorted(REFUSED))
def test_anything_else_is_one_line_naming_it(runs, text):
    with pytest.raises(QueryError) as err:
        mask(text, runs)
    msg = str(err.value)
    assert REFUSED[text] in msg and "\n" not in msg
    assert "not allowed" in msg and ALLOWED in msg


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lr", "not a condition"),
        ("lr +", "invalid syntax"),
        ("", "empty"),
        ("nope > 1", "unknown column 'nope'"),
        ("status > 3", "cannot evaluate"),
        ("'a' + 1 == 1", "arithmetic on text"),
        ("x" * 3000, "at most"),
        ("(" * 500 + "lr" + ")" * 500 + " > 1", "nested"),
        ("lr > 1\x00", "null bytes"),
    ],
)
def test_bad_conditions_are_one_line(runs, text, says):
    with pytest.raises(QueryError, match=None) as err:
        mask(text, runs)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_huge_powers_do_not_hang(runs):
    assert mask("seed < 10 ** 10 ** 10", runs).all()  # float64 overflow to inf, not a 10-billion-digit integer


HOSTILE = [  # each would write a file or run a shell command if it were executed
    "lr.to_csv('{out}') == 0",
    "status.to_csv('{out}') == 0 and lr > 0",
    "__import__('os').system('touch {out}') == 0",
    "lr.__class__.__init__.__globals__['__builtins__']['open']('{out}', 'w').write('x') > 0",
    "@pd.DataFrame.to_csv(@runs, '{out}') == 0",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{out}']) == 0",
    "(lambda: open('{out}', 'w'))() == 0",
    "lr.pipe(print) == 0",
    "breakpoint() == 0",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_queries_execute_nothing(runs, tmp_path, template, monkeypatch):
    out = tmp_path / "pwned"
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(sys, "breakpointhook", lambda *a: calls.append(a))
    before = runs.copy()
    with pytest.raises(QueryError):
        mask(template.format(out=out), runs)
    assert not out.exists() and not calls
    pd.testing.assert_frame_equal(runs, before)
