"""The family's forward pass (pre, f, x_hat and every term of J) against the NumPy reference
written from the papers' equations (family_reference.py), in float64."""

import jax
import numpy as np
import pytest
from architectures import family_reference

from saejax import architectures, gradcheck
from saejax.architectures import Options, common
from saejax.losses import Hyper

HYPER = Hyper(0.01, 3.0, 1e-3, l1=0.3, k=2, l0=0.1)
AUX = Options(aux_k=2, aux_coeff=0.25)
DEAD = np.array([True, False, True, False, True])
KEYS = ("reconstruction", "weight_decay", "sparsity", "loss", "rho_hat", "mean_l0", "fvu")

# Compiled once per architecture: eagerly, every small op compiles on its own (seconds).
terms = jax.jit(architectures.terms, static_argnums=(3, 4))
CASES = [("relu-l1", Options(), None), ("topk", Options(), None), ("topk", AUX, DEAD),
         ("batchtopk", Options(), None), ("batchtopk", AUX, DEAD), ("jumprelu", Options(), None)]


@pytest.mark.parametrize("arch, options, dead", CASES,
                         ids=[a + ("+aux" if d is not None else "") for a, _, d in CASES])
def test_terms_match_numpy(arch, options, dead):
    params, x, _ = gradcheck.family_problem(arch, 6, 5, 7, HYPER, options, dead)
    want = family_reference.forward(params, x, arch, lam=1e-3, l1=0.3, k=2, l0=0.1, dead=dead,
                                    aux_k=options.aux_k, aux_coeff=options.aux_coeff)
    got = terms(params, x, HYPER, arch, options, None if dead is None else np.asarray(dead))
    np.testing.assert_allclose(common.pre_activation(params, x), want["pre"], rtol=1e-12)
    if arch == "batchtopk":  # the training codes: the batch's selection
        pre, kept = architectures.batchtopk.selection(params, x, HYPER)
        f = np.asarray(pre) * np.asarray(kept)
    else:
        f = architectures.encode(params, x, HYPER, arch)
    np.testing.assert_allclose(f, want["f"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(common.decode(params, want["f"]), want["x_hat"], rtol=1e-12)
    for key in KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-15, err_msg=key)
    # Each mechanism is at work at this point: codes both kept and dropped, a nonzero penalty.
    assert 0 < np.count_nonzero(want["f"]) < want["f"].size
    if arch not in ("topk", "batchtopk") or dead is not None:
        assert want["sparsity"] > 0
    if arch == "batchtopk":
        np.testing.assert_allclose(got["smallest_kept"], want["smallest_kept"], rtol=1e-12)


def test_batchtopk_inference_uses_its_threshold():
    # encode keeps relu(pre) above params["threshold"], whatever the batch.
    params, x, _ = gradcheck.family_problem("batchtopk", 6, 5, 7, HYPER)
    pre = family_reference.pre_activation(family_reference.as_numpy(params), x)
    threshold = float(np.median(pre[pre > 0]))
    params = {**params, "threshold": np.asarray(threshold)}
    want = np.where(pre > threshold, pre, 0.0)
    np.testing.assert_allclose(architectures.encode(params, x, HYPER, "batchtopk"), want,
                               rtol=1e-12)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_aux_loss_is_zero_without_dead_latents(arch):
    # The NumPy reference (Gao et al., A.2): no dead latent, no auxiliary loss.
    params, x, _ = gradcheck.family_problem(arch, 6, 5, 7, HYPER, AUX)
    nobody = np.zeros(5, bool)
    want = family_reference.forward(params, x, arch, lam=1e-3, k=2, dead=nobody, aux_k=2,
                                    aux_coeff=0.25)
    assert want["sparsity"] == 0.0
    got = terms(params, x, HYPER, arch, AUX, nobody)
    np.testing.assert_allclose(got["sparsity"], want["sparsity"], atol=1e-15)


def test_jumprelu_counts_a_code_exactly_at_its_threshold_as_zero():
    # H(0) = 0: a pre-activation equal to theta gives f = 0 and adds nothing to L0; one rounding
    # above theta gives f = pre and counts. W1 = 0 makes pre = b1 exactly, and log_threshold = 0
    # makes theta = exp(0) = 1 exactly. Units: at, just below and just above the threshold.
    params, x, _ = gradcheck.family_problem("jumprelu", 6, 3, 4, HYPER)
    above = np.nextafter(1.0, 2.0)
    params = {**params, "W1": np.zeros((3, 6)), "log_threshold": np.zeros(3),
              "b1": np.array([1.0, np.nextafter(1.0, 0.0), above])}
    want_f = np.tile([0.0, 0.0, above], (4, 1))
    np.testing.assert_array_equal(architectures.encode(params, x, HYPER, "jumprelu"), want_f)
    got = terms(params, x, HYPER, "jumprelu", Options(), None)
    assert float(got["sparsity"]) == 0.1 * 1  # l0 times one counted unit per example
    assert float(got["mean_l0"]) == 1.0
    # the hand-written gradient agrees: the unit exactly at its threshold passes no gradient to
    # its pre-activation, as the paper's H(pre - theta) (and autodiff's custom VJP) say
    hand = architectures.terms_and_grad(params, x, HYPER, "jumprelu", Options())[1]
    auto = jax.grad(architectures.loss)(params, x, HYPER, "jumprelu", Options())
    for key in ("W1", "b1"):
        np.testing.assert_allclose(hand[key], auto[key], rtol=1e-12, atol=1e-15, err_msg=key)
    assert float(hand["b1"][0]) == 0.0 and float(hand["b1"][2]) != 0.0
