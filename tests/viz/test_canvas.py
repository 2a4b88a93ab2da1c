"""viz.canvas: bare figures that leave pyplot alone, and the checked axis values."""

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from saejax.records import files
from saejax.viz import canvas


@pytest.mark.slow
def test_figures_leave_pyplot_alone(tmp_path):
    # Drawing must not import pyplot, which would pick a global backend for the caller.
    code = (
        "import sys, numpy as np; from saejax import viz; "
        f"viz.save_filters(np.eye(4), {str(tmp_path / 'f.png')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("values, match", [
    ([[0.1, 0.2]], r"rho must be a non-empty 1-D sequence, got shape \(1, 2\)"),
    ([], r"rho must be a non-empty 1-D sequence, got shape \(0,\)"),
    ([0.1, float("nan")], "rho must be finite"),
    ([0.1, float("inf")], "rho must be finite"),
    ([0.1, 0.2, 0.1], "rho has repeated values"),
])
def test_axis_values_refuses_what_cannot_be_an_axis(values, match):
    with pytest.raises(ValueError, match=match):
        canvas.axis_values(values, "rho")


def test_axis_values_keeps_the_order_as_float64():
    got = canvas.axis_values([3, 0.5, 1], "beta")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [3.0, 0.5, 1.0])


def test_a_bare_figure_keeps_its_margins_and_is_written_as_png(tmp_path):
    fig = canvas.new_figure(3, 2, canvas.ONE_AXES_MARGINS)
    assert fig.get_layout_engine() is None
    params = fig.subplotpars
    assert (params.left, params.right, params.bottom, params.top) == (0.11, 0.97, 0.12, 0.92)
    fig.add_subplot().plot([0, 1], [1, 0])
    path = canvas.save_png(fig, tmp_path / "a" / "b.png")  # the folders are made
    assert path == tmp_path / "a" / "b.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).shape[:2] == (2 * canvas.DPI, 3 * canvas.DPI)
    assert fig.axes == []  # cleared once written
    assert canvas.new_figure(3, 2).get_layout_engine() is not None  # constrained, unless told


def test_a_picture_that_fails_half_written_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "filters.png"
    fig = canvas.new_figure(2, 2)
    canvas.save_png(fig, path)
    before = path.read_bytes()
    assert matplotlib.image.imread(path).shape[:2] == (200, 200)  # a PNG at 100 dpi

    def half_then_fail(target, **kwargs):  # the disk fills after the first bytes
        with open(target, "wb") as f:
            f.write(before[:40])
        raise OSError(28, "No space left on device")

    fig = canvas.new_figure(2, 2)
    monkeypatch.setattr(fig, "savefig", half_then_fail)
    with pytest.raises(files.RecordError, match="cannot write .*filters.png: No space left"):
        canvas.save_png(fig, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png"]  # no temporary left
