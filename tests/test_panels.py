"""Figures' panels: one per lr as always, one per condition when a study also sweeps a few values of width,
activation or another axis, in the study's numeric order; continuous axes pooled and said so."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from xorlab.report.panels import LR, conditioned, panel_axes, panels, pooled_axes


def runs_of(**axes) -> pd.DataFrame:
    rows = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return pd.DataFrame(rows)


def test_lr_alone_keeps_lr_panels():
    runs = runs_of(lr=[0.1, 1.0, 3.0], seed=range(3))
    out, p = panels(runs)
    assert p is LR and "panel" not in out and p.title(0.1) == "lr = 0.1"
    assert pooled_axes(["lr"], runs) == []


def test_conditions_are_in_numeric_order_rows_by_activation_and_lr_columns_by_width():
    runs = runs_of(width=[16, 2, 8], activation=["relu", "tanh"], lr=[1.0, 0.1], seed=range(2))
    out, p = panels(runs)
    assert p.axes == ("activation", "lr", "width") and p.ncols == 3
    titles = [p.titles[i] for i in sorted(p.titles)]
    assert titles[:4] == ["tanh, lr = 0.1, width 2", "tanh, lr = 0.1, width 8", "tanh, lr = 0.1, width 16",
                          "tanh, lr = 1, width 2"]  # fmt: skip
    assert titles[-1] == "relu, lr = 1, width 16" and len(titles) == 12
    # every run carries the code of its own condition
    for code, row in p.combos.iterrows():
        mine = out[(out["width"] == row["width"]) & (out["activation"] == row["activation"]) & (out["lr"] == row["lr"])]
        assert (mine["panel"] == code).all() and len(mine) == 2


def test_tag_labels_grouped_frames_by_their_axes():
    runs = runs_of(width=[2, 4], activation=["tanh"], lr=[0.5], seed=range(3))
    _, p = panels(runs)
    summary = pd.DataFrame({"init_label": ["a", "b", "a"], "width": [4, 2, 2], "activation": "tanh", "lr": 0.5})
    assert p.tag(summary)["panel"].tolist() == [1, 0, 0]


def test_continuous_axes_are_pooled_not_faceted():
    runs = runs_of(lr_hidden=np.linspace(0.5, 2, 20), width=[2, 4], lr=[0.1])
    assert panel_axes(runs) == ["lr", "width"]
    assert pooled_axes(["lr_hidden", "width"], runs) == ["lr_hidden"]


def test_captions_say_what_the_panels_are():
    text = "Training loss per init, one panel per learning rate{budget}."
    assert conditioned(text, ["activation", "lr", "width"]) == (
        "Training loss per init, one panel per condition (activation, lr, width){budget}."
    )


def test_a_report_of_widths_and_activations_facets_by_condition(tmp_path):
    from xorlab.report import builder
    from xorlab.store.reader import load_curves, load_runs
    from xorlab.sweep.grid import Grid
    from xorlab.sweep.options import SweepOptions
    from xorlab.sweep.runner import run_sweep

    grid = {"width": [2, 4], "activation": ["tanh", "relu"], "seed": "range(0,6)", "max_steps": [80], "lr": [0.5]}
    store = tmp_path / "store"
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=store, progress=False, engine="numpy", log_every=10))
    runs, curves = load_runs(store), load_curves(store)
    paths = builder.build_report(runs, curves, tmp_path / "out", formats=("png",))
    text = paths["md"].read_text()
    assert "one panel per condition (activation, lr, width)" in text and "pooled over" not in text
    assert "Swept: `seed` (6 values: 0–5), `width` (2 values: 2, 4), `activation` (2 values: relu, tanh)" in text
    assert all((tmp_path / "out" / "figures" / f"{stem}.png").is_file() for stem in builder.FIGURES)


def test_categorical_columns_are_ordered_by_value():
    """A report loads text columns as categoricals: the panels keep the package's order (tanh first) whatever
    order the categories were found in."""
    runs = runs_of(width=[2, 8], activation=["relu", "tanh"], lr=[0.1])
    plain = panels(runs)[1]
    cat = panels(runs.astype({"activation": "category"}))[1]
    assert [cat.titles[i] for i in sorted(cat.titles)] == [plain.titles[i] for i in sorted(plain.titles)]
    assert plain.titles[0].startswith("tanh")
