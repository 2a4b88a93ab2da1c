"""The PyTorch peer of the family's sweep benchmark (experiments/peers/torch_family_sweep.py)
computes what saejax computes: one member's J and gradient at the same params, each ensemble
member's gradient on its seed's batch, the initialization's conventions and the final FVU and
L0. A benchmark that compares the two is only fair if these agree."""

import importlib.util
import itertools
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from saejax import architectures
from saejax.losses import Hyper

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: the benchmark peers need pip install -e '.[bench]'")

# Several seconds each (saejax compiles every member's evaluation): left out of the fast tier.
pytestmark = pytest.mark.slow

PEER = Path(__file__).resolve().parents[2] / "experiments" / "peers" / "torch_family_sweep.py"


def load_peer():
    spec = importlib.util.spec_from_file_location("torch_family_sweep", PEER)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def problem(n=6, h=10, m=12, seed=0):
    """Family params in float64 off their initialization (biases moved, columns not unit), and
    real-valued x, so that some latents fire and some do not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, n)) * 1.5 + 0.3
    params = architectures.init_params(jnp.asarray(np.zeros(2, np.uint32)), n, h, "relu-l1",
                                       x.mean(0), jnp.float64)
    params = {k: np.asarray(v) + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}
    return params, x


def as_torch(params):
    return [torch.from_numpy(np.asarray(params[k])) for k in ("W1", "b1", "W2", "b2")]


def torch_grad(peer, arch, params, knob, x):
    if arch == "relu-l1":
        loss = lambda W1, b1, W2, b2: peer.relu_l1_loss(W1, b1, W2, b2,  # noqa: E731
                                                        torch.tensor(knob, dtype=torch.float64), x)
    else:
        loss = lambda W1, b1, W2, b2: peer.topk_loss(W1, b1, W2, b2, knob, x)  # noqa: E731
    J = loss(*params)
    return J, torch.func.grad(loss, argnums=(0, 1, 2, 3))(*params)


def saejax_terms_and_grad(arch, params, knob, x):
    hyper = Hyper(rho=0.01, beta=0.0, lam=0.0, l1=knob if arch == "relu-l1" else 0.0,
                  k=knob if arch == "topk" else 1)
    return architectures.terms_and_grad({k: jnp.asarray(v) for k, v in params.items()},
                                        jnp.asarray(x), hyper, arch)


@pytest.mark.parametrize("arch, knob", [("relu-l1", 0.3), ("relu-l1", 0.0), ("topk", 3),
                                        ("topk", 1)])
def test_member_loss_and_grad_equal_saejax(arch, knob):
    peer = load_peer()
    params, x = problem()
    J, g = torch_grad(peer, arch, as_torch(params), knob, torch.from_numpy(x))
    terms, want = saejax_terms_and_grad(arch, params, knob, x)
    np.testing.assert_allclose(float(J), float(terms["loss"]), rtol=1e-12)
    for name, got in zip(("W1", "b1", "W2", "b2"), g, strict=True):
        np.testing.assert_allclose(got.numpy(), np.asarray(want[name]), rtol=1e-10, atol=1e-13,
                                   err_msg=name)


@pytest.mark.parametrize("arch, knobs, seeds", [("relu-l1", [0.1, 1.0], [0]),
                                                 ("relu-l1", [0.5], [3, 7]),
                                                 ("topk", [2, 4], [0, 1])])
def test_ensemble_member_grads_are_each_members_own(arch, knobs, seeds):
    # vmap of grad over the stacked members, each on its own seed's batch (or the one shared
    # batch), gives member g exactly saejax's gradient of member g alone.
    peer = load_peer()
    params, x = problem()
    n, h = params["W2"].shape
    rng = np.random.default_rng(1)
    batches = torch.from_numpy(rng.normal(size=(len(seeds), 8, n)))
    groups = peer.make_groups(arch, knobs, seeds, n, h, torch.zeros(n))
    for group in groups:
        g = len(group.batch_of)
        perturbed = [{k: v + 0.01 * i for k, v in params.items()} for i in range(g)]
        group.params = [torch.stack([as_torch(p)[j] for p in perturbed]) for j in range(4)]
        members = [mb for mb in itertools.product(knobs, seeds)
                   if arch == "relu-l1" or mb[0] == knobs[groups.index(group)]]
        assert len(members) == g
        # the peer keeps l1 in float32; the float64 comparison needs it exact
        group.knob = torch.tensor([knob for knob, _ in members], dtype=torch.float64)
        group.set_grads(batches)
        for i, (knob, seed) in enumerate(members):
            _, want = saejax_terms_and_grad(arch, perturbed[i], knob,
                                            batches[seeds.index(seed)].numpy())
            for name, p in zip(("W1", "b1", "W2", "b2"), group.params, strict=True):
                np.testing.assert_allclose(p.grad[i].numpy(), np.asarray(want[name]),
                                           rtol=1e-10, atol=1e-13, err_msg=f"{name} member {i}")


def test_initialization_follows_the_family_conventions():
    peer = load_peer()
    x_mean = torch.arange(5.0)
    W1, b1, W2, b2 = peer.init_member(3, 5, 7, x_mean)
    np.testing.assert_allclose(torch.linalg.vector_norm(W2, dim=0).numpy(), 1.0, rtol=1e-6)
    assert torch.equal(W1, W2.T) and torch.equal(b2, x_mean) and not b1.any()
    # same seed, same init (members sharing a seed start alike, as in saejax); another seed not
    assert torch.equal(peer.init_member(3, 5, 7, x_mean)[2], W2)
    assert not torch.equal(peer.init_member(4, 5, 7, x_mean)[2], W2)


@pytest.mark.parametrize("arch, knobs", [("relu-l1", [0.2]), ("topk", [3])])
def test_final_fvu_and_l0_equal_saejax(arch, knobs, monkeypatch):
    peer = load_peer()
    monkeypatch.setattr(peer, "FINAL_BLOCK", 5)  # several blocks, the last one short
    params, x = problem(m=13)
    n, h = params["W2"].shape
    (group,) = peer.make_groups(arch, knobs, [0], n, h, torch.zeros(n))
    group.params = [p[None] for p in as_torch(params)]
    group.knob = torch.tensor(knobs, dtype=torch.float64)
    fvu, l0 = group.final_stats(torch.from_numpy(x))
    hyper = Hyper(rho=0.01, beta=0.0, lam=0.0, l1=knobs[0], k=knobs[0])
    stats = architectures.stats({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x),
                                hyper, arch)
    np.testing.assert_allclose(float(fvu[0]), float(stats["fvu"]), rtol=1e-12)
    np.testing.assert_allclose(float(l0[0]), float(stats["mean_l0"]), rtol=1e-12)
    assert 0 < float(l0[0]) < h  # some latents fire, not all
