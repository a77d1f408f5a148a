"""Tests for ``xorlab.report.progress``, ``figures.save``'s formats and SVG rasterizing, and ``--formats``."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from xorlab.apps import report as report_app
from xorlab.report import figures
from xorlab.report.progress import Progress


def test_progress_is_quiet_when_stderr_is_not_a_terminal(capsys):
    with Progress({"a": 1, "b": 3}) as p:  # pytest captures stderr: not a terminal
        p.start("a", 10)
        p.advance(10)
        p.start("b")
        assert p.bar.disable
    assert capsys.readouterr().err == ""


def test_progress_reaches_the_end_whatever_the_stages_report():
    p = Progress({"a": 1, "b": 1}, enabled=False)
    p.start("a", 4)
    p.advance(1)  # a stage that stops early is finished by the next one
    p.start("b", 2)
    p.advance(5)  # more units than declared never overshoot
    p.close()
    assert p.done == pytest.approx(1.0)


def test_dense_artists_are_rasterized_inside_the_svg_only(tmp_path):
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot(np.arange(5000), np.sin(np.arange(5000)))
    ax.plot([0, 1], [0, 1])
    paths = figures.save(fig, tmp_path, "dense")
    svg = paths["svg"].read_text()
    assert "<image" in svg and svg.count("<path") < 50  # the 5,000-point line is pixels, the short one a path
    assert [line.get_rasterized() for line in ax.lines] == [True, False]


def test_png_only(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    assert set(figures.save(fig, tmp_path, "f", formats=("png",))) == {"png"}
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


@pytest.mark.parametrize(("text", "words"), [("svg", "png is required"), ("png,pdf", "unknown format 'pdf'")])
def test_bad_formats_are_one_line(text, words):
    with pytest.raises(report_app.ReportError, match=words):
        report_app.formats(text)
    assert report_app.formats(" PNG , svg ") == ("png", "svg")


def test_progress_from_several_threads_adds_up():
    """A stage's units may be advanced from worker threads (the bands' pass beside the figures): none is lost and
    the bar never overshoots."""
    from concurrent.futures import ThreadPoolExecutor

    p = Progress({"a": 1, "b": 1}, enabled=False)
    p.start("a", 4000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: [p.advance() for _ in range(1000)], range(4)))
    assert p.done == pytest.approx(0.5) and p.left == pytest.approx(0.0)
    p.start("b", 1)
    p.close()
    assert p.done == pytest.approx(1.0)
