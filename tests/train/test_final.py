"""train.final: a family member's blocked final evaluation equals the whole-batch terms and
statistics it sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saejax import architectures
from saejax.losses import Hyper
from saejax.train.final import family_final


@pytest.mark.parametrize("arch", ["topk", *(pytest.param(a, marks=pytest.mark.slow)
                                            for a in ("relu-l1", "batchtopk", "jumprelu"))])
def test_blocks_sum_to_the_whole_batch(arch):
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(37, 6)))
    params = architectures.init_params(jax.random.key(1), 6, 9, arch, jnp.mean(x, 0),
                                       jnp.float64)
    if arch == "jumprelu":
        params["log_threshold"] = jnp.log(jnp.full(9, 0.2))
    if arch == "batchtopk":
        params["threshold"] = jnp.asarray(0.3)
    hyper = Hyper(0.05, 0.0, 1e-3, l1=0.4, k=3, l0=0.2)
    terms, stats = family_final(params, x, hyper, arch, block=8)  # 5 blocks, 3 rows of padding
    whole = architectures.stats(params, x, hyper, arch)
    for key in whole:
        np.testing.assert_allclose(stats[key], whole[key], rtol=1e-12, err_msg=key)
    if arch != "batchtopk":  # batchtopk's training form selects over the batch, not a threshold
        want = architectures.terms(params, x, hyper, arch)  # no dead latents: no aux loss
        for key in ("loss", "reconstruction", "weight_decay", "sparsity", "mean_l0", "fvu"):
            np.testing.assert_allclose(terms[key], want[key], rtol=1e-12, err_msg=key)


def test_codes_are_the_architectures_inference_codes():
    # topk written in NumPy: each row's k largest of pre = (x - b2) W1^T + b1, then a ReLU
    from saejax.config import TrainConfig
    from saejax.train.final import codes

    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 5))
    config = TrainConfig(arch="topk", n_hidden=6, k=2, dtype="float64")
    params = architectures.init_params(jax.random.key(0), 5, 6, "topk", x.mean(0), jnp.float64)
    pre = (x - np.asarray(params["b2"])) @ np.asarray(params["W1"]).T + np.asarray(params["b1"])
    kth = np.sort(pre, axis=1)[:, -2:-1]
    want = np.where((pre >= kth) & (pre > 0), pre, 0.0)
    np.testing.assert_allclose(codes(params, jnp.asarray(x), config), want, rtol=1e-12)
    sigmoid = TrainConfig(n_hidden=6, dtype="float64")
    p = {k: params[k] for k in ("W1", "b1", "W2", "b2")}
    a2 = 1 / (1 + np.exp(-(x @ np.asarray(p["W1"]).T + np.asarray(p["b1"]))))  # UFLDL's a2
    np.testing.assert_allclose(codes(p, jnp.asarray(x), sigmoid), a2, rtol=1e-12)
