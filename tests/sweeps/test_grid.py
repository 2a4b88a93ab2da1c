"""sweeps.grid: product and points grids, and every bad grid refused before anything compiles."""

import numpy as np
import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data as data

from saejax import sweeps


def test_points_mode_and_bad_grids():
    c = cfg()
    g = sweeps.make_grid(c, rho=[0.1, 0.2], beta=[1.0, 2.0], lam=[0.0, 1e-3], mode="points")
    assert len(g) == 2 and g.lam == (0.0, 1e-3) and g.lr == (c.lr, c.lr)
    assert len(sweeps.make_grid(c, rho=[0.1, 0.2], beta=[1, 2, 3], seed=[0, 1])) == 12
    bad = [
        (dict(rho=[], beta=[1.0]), "empty"),
        (dict(rho=[0.1, 1.0], beta=[1.0]), "strictly inside"),
        (dict(rho=[0.1], beta=[-1.0]), "beta must be finite and >= 0"),
        (dict(rho=[0.1], beta=[1.0], lam=[-1e-3]), "lam must be finite and >= 0"),
        (dict(rho=[0.1, 0.2], beta=[1.0], mode="points"), "same length"),
        (dict(rho=[0.1], beta=[1.0], seed=[1.5]), "whole number"),
        (dict(rho=[0.1], beta=[1.0], seed=[2**32 + 5]), "whole number"),
    ]
    for kw, message in bad:
        with pytest.raises(ValueError, match=message):
            sweeps.make_grid(c, **kw)
    x = data()
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        sweeps.sweep(c, x, rho=[0.1], beta=[1.0], chunk_size=0, progress=False)
    with pytest.raises(ValueError, match="asked for 64 devices"):
        sweeps.sweep(c, x, rho=[0.1], beta=[1.0], num_devices=64, progress=False)


def test_product_mode_varies_the_last_axis_fastest_and_fills_the_rest_from_the_config():
    c = cfg(lam=0.5, lr=0.03, seed=9)
    g = sweeps.make_grid(c, rho=[0.1, 0.2], beta=[1.0, 2.0, 3.0])
    assert g.rho == (0.1, 0.1, 0.1, 0.2, 0.2, 0.2)
    assert g.beta == (1.0, 2.0, 3.0, 1.0, 2.0, 3.0)
    assert g.lam == (0.5,) * 6 and g.lr == (0.03,) * 6 and g.seed == (9,) * 6
    assert g.member(4) == {"rho": 0.2, "beta": 2.0, "lam": 0.5, "l1": 1.0, "k": 16, "l0": 0.01,
                           "lr": 0.03, "seed": 9}
    # the axes multiply in their schema order (rho, beta, lam, lr, seed), whatever the call's
    g = sweeps.make_grid(c, seed=[0, 1], beta=[3.0], rho=[0.05])
    assert [g.member(i)["seed"] for i in range(len(g))] == [0, 1]


def test_grid_values_are_plain_numbers_and_a_whole_float_seed_is_an_int():
    g = sweeps.make_grid(cfg(), rho=np.array([0.1, 0.2]), beta=2, seed=[3.0])
    assert g.rho == (0.1, 0.2) and g.beta == (2, 2)
    assert g.seed == (3, 3) and all(type(s) is int for s in g.seed)
    assert all(type(r) is float for r in g.rho)


def test_a_grid_needs_rho_and_beta_and_a_known_mode():
    with pytest.raises(ValueError, match="a sweep needs values of rho"):
        sweeps.make_grid(cfg(), rho=None, beta=[1.0])
    with pytest.raises(ValueError, match="a sweep needs values of beta"):
        sweeps.make_grid(cfg(), rho=[0.1], beta=None)
    with pytest.raises(ValueError, match="mode must be 'product' or 'points'"):
        sweeps.make_grid(cfg(), rho=[0.1], beta=[1.0], mode="zip")
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        sweeps.make_grid(cfg(), rho=[0.1], beta=[1.0], lr=[0.0])
