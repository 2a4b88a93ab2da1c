"""The one-kernel-per-member evaluation (saejax.kernel): Pallas's interpreter against vmap and the
NumPy loop, its padding, its refusal of wide networks, and its Triton program for a GPU."""

import itertools
import re
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from saejax import grads, kernel, train
from saejax.config import TrainConfig
from saejax.losses import Hyper
from saejax.schema import DECODERS, PENALTIES


def members(G, M, N, H, tied=False, seed=0, dtype=jnp.float64):
    k = jax.random.split(jax.random.key(seed), 5)
    params = {"W1": 0.4 * jax.random.normal(k[0], (G, H, N), dtype),
              "b1": 0.3 * jax.random.normal(k[1], (G, H), dtype),
              "b2": -0.2 * jax.random.normal(k[2], (G, N), dtype)}
    if not tied:
        params["W2"] = 0.4 * jax.random.normal(k[3], (G, N, H), dtype)
    x = jax.random.uniform(k[4], (M, N), dtype)
    hyper = Hyper(jnp.linspace(0.01, 0.3, G, dtype=dtype), jnp.linspace(0.1, 5.0, G, dtype=dtype),
                  jnp.linspace(0, 1e-2, G, dtype=dtype))
    return params, x, hyper


def assert_same(got, want):
    assert set(got[0]) == set(want[0]) and set(got[1]) == set(want[1])
    for part_got, part_want in zip(got, want, strict=True):
        for key in part_want:
            np.testing.assert_allclose(part_got[key], part_want[key], rtol=1e-12, atol=1e-15,
                                       err_msg=key)


# The fast tier keeps two of the cases: the exercise's, and a linear tied one with another penalty.
FAST = {("kl", "sigmoid", False), ("squared", "linear", True)}


@pytest.mark.parametrize(("penalty", "decoder", "tied"), [
    pytest.param(*case, marks=() if case in FAST else pytest.mark.slow)
    for case in itertools.product(PENALTIES, DECODERS, (False, True))])
def test_the_kernel_equals_the_vmapped_evaluation(penalty, decoder, tied):
    # 37 examples in blocks of kernel.BLOCK (16: three, the last one short); 9 visible and 5
    # hidden units padded to 16
    params, x, hyper = members(3, 37, 9, 5, tied)
    want = jax.vmap(partial(grads.terms_and_grad, penalty=penalty, decoder=decoder, tied=tied),
                    (0, None, 0))(params, x, hyper)
    got = kernel.kernel_terms_and_grad(params, x, hyper, penalty, decoder, tied, interpret=True)
    assert_same(got, want)


@pytest.mark.slow  # the fast tier's cases above run several blocks too
def test_several_blocks_of_a_wider_input_equal_the_numpy_loop():
    # N = 100 pads to 128: blocks of 64 examples, 150 examples in three (the last one short)
    G, M, N, H = 2, 150, 100, 7
    assert kernel.padded(N) == 128
    params, x, hyper = members(G, M, N, H, seed=1)
    terms, got = kernel.kernel_terms_and_grad(params, x, hyper, interpret=True, block=64)
    want_all = jax.vmap(grads.terms_and_grad, (0, None, 0))(params, x, hyper)[0]
    for key in want_all:  # rho_hat, mean_l0 and fvu summed over the three blocks too
        np.testing.assert_allclose(terms[key], want_all[key], rtol=1e-12, err_msg=key)
    for g in range(G):
        one = {k: np.asarray(v[g]) for k, v in params.items()}
        want = reference.grad(one, np.asarray(x), float(hyper.rho[g]), float(hyper.beta[g]),
                              float(hyper.lam[g]))
        for key in want:
            np.testing.assert_allclose(got[key][g], want[key], rtol=1e-10, atol=1e-14,
                                       err_msg=f"member {g} {key}")
        want_terms = reference.terms(one, np.asarray(x), float(hyper.rho[g]),
                                     float(hyper.beta[g]), float(hyper.lam[g]))
        for key in ("loss", "reconstruction", "sparsity"):
            np.testing.assert_allclose(terms[key][g], want_terms[key], rtol=1e-12, err_msg=key)


def test_padding_by_hand():
    assert [kernel.padded(n) for n in (1, 9, 16, 17, 25, 64, 65, 784)] == [
        16, 16, 16, 32, 32, 64, 128, 1024]


def test_a_network_too_wide_for_registers_is_refused_with_what_to_use():
    kernel.check_size(64, 25)  # the exercise: 64 x 32 padded
    assert kernel.fits(64, 64) and not kernel.fits(64, 65)  # 4,096 float32 values, 8,192
    assert kernel.fits(64, 32, "float64") and not kernel.fits(64, 33, "float64")
    assert kernel.fits(128, 32) and not kernel.fits(129, 16)  # at most 128 inputs, padded
    params, x, hyper = members(2, 8, 784, 196, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"784-196 pads to 1024 x 256, more than 4096 float32 "
                                         r"values or more than 128 inputs. Use member_eval "
                                         r"'whole'"):
        kernel.kernel_terms_and_grad(params, x, hyper, interpret=True)


def test_data_past_32_bit_offsets_and_odd_blocks_are_refused():
    # padded to whole blocks: blocks of 64 add up to 64 rows, the default blocks up to 16
    kernel.check_size(64, 25, m=2**31 // 64 - 65, block=64)
    with pytest.raises(ValueError, match="32-bit offsets: 33554368 examples"):
        kernel.check_size(64, 25, m=2**31 // 64 - 64, block=64)
    assert kernel.BLOCK == 16
    kernel.check_size(64, 25, m=2**31 // 64 - 17)
    with pytest.raises(ValueError, match="32-bit offsets: 33554416 examples"):
        kernel.check_size(64, 25, m=2**31 // 64 - 16)
    for block in (16, 32, 128):
        kernel.check_block(block)
    for block in (8, 48, 100):
        with pytest.raises(ValueError, match=f"power of two, at least 16; got {block}"):
            kernel.check_block(block)


def test_the_gpu_program_is_two_triton_kernels_and_no_members_temporaries_around_them():
    # Lowered for CUDA (no GPU needed): the exercise's 1,024 members are two Triton kernels, and
    # no array outside them is as large as one (M, N) temporary of 64 members (inside a kernel,
    # its registers: the next test).
    G, M, N, H = 1024, 10_000, 64, 25
    S, f32 = jax.ShapeDtypeStruct, jnp.float32
    params = {"W1": S((G, H, N), f32), "b1": S((G, H), f32), "W2": S((G, N, H), f32),
              "b2": S((G, N), f32)}
    hyper = Hyper(S((G,), f32), S((G,), f32), S((G,), f32))
    lowered = jax.jit(partial(kernel.kernel_terms_and_grad, interpret=False)).trace(
        params, S((M, N), f32), hyper).lower(lowering_platforms=("cuda",)).as_text()
    assert lowered.count("xla.gpu.triton") == 2
    sizes = [int(np.prod([int(d) for d in shape.split("x")]))
             for shape in re.findall(r"tensor<((?:\d+x)+)\w+>", lowered)
             for shape in [shape.rstrip("x")]]
    assert sizes and max(sizes) < 64 * M * N, max(sizes)


@pytest.mark.parametrize(("backend", "interpreted"), [("gpu", False), ("cpu", True),
                                                      ("tpu", True)])
def test_the_kernels_are_interpreted_by_default_anywhere_but_a_gpu(monkeypatch, backend,
                                                                   interpreted):
    # the backend as JAX reports it, and Pallas's call recorded instead of run: each of the two
    # kernels gets interpret=False on a GPU only (and an interpret given wins everywhere)
    seen = []

    def pallas_call(body, *, out_shape, interpret, **_):
        seen.append(interpret)
        return lambda *ins: [jnp.zeros(o.shape, o.dtype) for o in out_shape]

    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(kernel.pl, "pallas_call", pallas_call)
    params, x, hyper = members(2, 5, 3, 2)
    kernel.kernel_terms_and_grad(params, x, hyper)
    assert seen == [interpreted] * 2
    kernel.kernel_terms_and_grad(params, x, hyper, interpret=not interpreted)
    assert seen[2:] == [not interpreted] * 2


def test_choosing_the_kernel_off_a_gpu_warns_that_it_is_interpreted():
    if jax.default_backend() == "gpu":
        pytest.skip("on a GPU the kernel is compiled")
    with pytest.warns(UserWarning, match="Pallas's interpreter, correct but slow"):
        train.make_evaluate(TrainConfig(member_eval="kernel"), batched=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train.make_evaluate(TrainConfig(member_eval="folded"), batched=True)



def test_a_sweep_too_wide_for_the_kernel_is_refused_before_anything_is_written(tmp_path):
    from saejax import sweeps

    x = np.random.default_rng(0).uniform(0.1, 0.9, (20, 784))
    config = TrainConfig(n_hidden=196, member_eval="kernel", optimizer="adam", batch_size=8,
                         steps=2)
    with pytest.raises(ValueError, match="784-196 pads to 1024 x 256"):
        sweeps.sweep(config, x, rho=[0.01, 0.1], beta=[3.0], workdir=tmp_path / "sweep",
                     progress=False)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_the_default_launch_keeps_every_accepted_size_in_registers(tmp_path):
    # ptxas's report on the PTX XLA generates for a compile-only H100 (no GPU needed): with the
    # default launch no thread spills to local memory, at the exercise's size and at each padded
    # shape of the kernel's limits; past them (256 inputs) it does, which is why they hold.
    import json
    import os
    import subprocess
    import sys

    from experiments.bench import gpu_compile

    if not gpu_compile.available():
        pytest.skip(gpu_compile.MISSING)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.bench.kernel_registers", "--blocks",
         str(kernel.BLOCK), "--warps", str(kernel.NUM_WARPS), "--out", str(tmp_path)],
        env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((tmp_path / "kernel_registers.json").read_text())["rows"]
    assert {r["size"] for r in rows} >= {"64-25", "16-256", "32-128", "64-64", "128-32",
                                         "256-16"}
    for r in rows:
        spilled = r["spill_stores"] > 0
        assert spilled == (r["size"] == "256-16" and r["program"] == "grads_kernel"), r
        assert r["accepted"] == (r["size"] != "256-16") and 0 < r["registers"] <= 255, r
