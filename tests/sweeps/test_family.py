"""Sweeps of the family's knobs: each member equals its standalone run (float64), L-BFGS
sweeps relu-l1, a family sweep resumes to the same result, and the grid refuses another
architecture's knob."""

import numpy as np
import pytest
from helpers import sweep_config as cfg
from helpers import sweep_data

from saejax import sweeps, train


def data():
    """Standardized-like data (outside [0, 1]), as the family trains on."""
    return np.random.default_rng(3).normal(size=(48, 16))


SWEEPS = {  # arch: (the knob's values, config changes)
    "relu-l1": ({"l1": [0.05, 0.5]}, {}),
    "topk": ({"k": [1, 3]}, {"aux_coeff": 0.5, "dead_window": 16, "aux_k": 2}),
    "batchtopk": ({"k": [1, 3]}, {"aux_coeff": 0.5, "dead_window": 16, "aux_k": 2}),
    "jumprelu": ({"l0": [0.01, 0.3]}, {"bandwidth": 0.05}),
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(SWEEPS))
def test_member_equals_standalone_run(arch):
    knob, extra = SWEEPS[arch]
    c = cfg(arch=arch, n_hidden=6, lam=0.0, **extra)
    x = data()
    res = sweeps.sweep(c, x, seed=[0, 1], chunk_size=4, progress=False, **knob)
    assert len(res.rows) == 4
    name = next(iter(knob))
    for i, row in enumerate(res.rows):
        alone = train.run(c.replace(**{name: row[name]}, seed=row["seed"]), x, progress=False)
        # Adam divides by sqrt(v) + 1e-8: where a gradient is zero up to rounding (1e-17, the
        # vmapped and the single matmuls summing in other orders), the update is lr * 1e-17 /
        # 1e-8 = 2e-11 a step, different in the two. Hence the absolute tolerance (measured
        # difference: 8e-10 after 12 steps; a wrong member is off by 1e-2).
        for k, v in alone.state.params.items():
            np.testing.assert_allclose(res.params[k][i], v, rtol=1e-8, atol=5e-9, err_msg=k)
        for key in ("final_loss", "mean_l0", "fvu", "dead_fraction", "shrinkage"):
            np.testing.assert_allclose(row[key], alone.summary[key], rtol=1e-8, err_msg=key)
    # the knob acts: more latents kept, or a weaker penalty, gives a larger L0; jumprelu's 12
    # steps move its thresholds (from 0.001, in log space) too little to change the L0, but a
    # larger l0 raises them further
    values = np.asarray([row[name] for row in res.rows])
    low, high = values == knob[name][0], values == knob[name][1]
    if arch == "jumprelu":
        theta = res.params["log_threshold"].mean(axis=1)
        assert theta[high].mean() > theta[low].mean()
        return
    l0 = np.asarray([row["mean_l0"] for row in res.rows])
    assert (l0[high].mean() > l0[low].mean()) if name == "k" else (l0[low].mean() > l0[high].mean())


@pytest.mark.slow
def test_one_seed_shares_the_batches_and_still_equals_standalone_runs():
    c = cfg(arch="topk", n_hidden=6, lam=0.0, aux_coeff=0.0)
    x = data()
    res = sweeps.sweep(c, x, k=[2, 4, 5], chunk_size=3, progress=False)
    for i, row in enumerate(res.rows):
        alone = train.run(c.replace(k=row["k"]), x, progress=False)
        np.testing.assert_allclose(res.params["W2"][i], alone.state.params["W2"], rtol=1e-8,
                                   atol=5e-9)  # Adam's eps, as above
        assert row["mean_l0"] <= row["k"] + 1e-12  # topk's codes never hold more than k


@pytest.mark.slow
def test_lbfgs_sweeps_relu_l1_as_standalone_runs():
    c = cfg(arch="relu-l1", optimizer="lbfgs", batch_size=None, steps=8, steps_per_call=4,
            n_hidden=6, lam=1e-3)
    x = data()
    res = sweeps.sweep(c, x, l1=[0.01, 0.2, 1.0], chunk_size=4, progress=False)
    for i, row in enumerate(res.rows):
        alone = train.run(c.replace(l1=row["l1"]), x, progress=False)
        np.testing.assert_allclose(res.params["W1"][i], alone.state.params["W1"], rtol=1e-9,
                                   atol=1e-12)
        assert row["iterations"] == alone.summary["iterations"]


def test_the_grid_refuses_another_architectures_knob():
    with pytest.raises(ValueError, match="rho is not a knob of topk"):
        sweeps.sweep(cfg(arch="topk", n_hidden=6), sweep_data(), rho=[0.1], progress=False)
    with pytest.raises(ValueError, match="k = 9 exceeds the 6 latents"):
        sweeps.sweep(cfg(arch="topk", n_hidden=6), sweep_data(), k=[2, 9], progress=False)
