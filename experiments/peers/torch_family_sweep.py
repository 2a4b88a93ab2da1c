"""An adam sweep of relu-l1 or topk sparse autoencoders in PyTorch (torch.func ensemble): the peer
of `saejax sweep --arch relu-l1|topk`.

Command:   .venv/bin/python -m experiments.peers.torch_family_sweep --data X.npy --arch relu-l1
           --l1 A1 A2 ... | --arch topk --k K1 K2 ... [--seed S1 S2 ...] [--n-hidden 256]
           [--steps 2000] [--batch-size 256] [--lr 1e-3]
Needs:     PyTorch (a benchmark peer only, never a saejax dependency): pip install -e '.[bench]'
Run time:  on 2 CPU cores with (100,000, 64) data, 64 members and 256 latents: about 45 s for
           relu-l1 and 300 steps, 50 s for topk and 100 steps (experiments.bench.family_sweep).
Expected:  one line ``FVU = ... L0 = ... mean over G members ..., S steps, T seconds in the
           script``; the whole process is what experiments.bench.family_sweep times.

What a PyTorch user would write for an ensemble, independent of saejax: one member per (knob,
seed) pair, their parameters stacked along a leading axis, ``torch.func.vmap`` of
``torch.func.grad`` of one member's functional loss, and ``torch.optim.Adam`` (fused) on the
stacked tensors, in float32. Adam on the stacked tensors is exactly per-member Adam (its moments
and update are elementwise; member g's slice of a stacked gradient is member g's own gradient).

The network and its conventions, the family's (Bricken et al. 2023; Gao et al. 2024):

    pre = (x - b2) W1^T + b1,   x_hat = f W2^T + b2,   J = (1/m) sum_k ||x_hat_k - x_k||^2 + ...
    relu-l1:  f = relu(pre),    ... + l1 (1/m) sum_k sum_j f_kj ||W2[:, j]||
    topk:     f = relu of the k largest pre-activations of each example (torch.topk), the rest 0;
              no auxiliary loss (saejax runs with --aux-coeff 0 beside it)

initialized with unit-norm random decoder columns (a normal draw per seed), the encoder as
their transpose, b1 = 0 and b2 at the data mean; topk's decoder columns are scaled back to
unit norm after every Adam step. No weight decay (saejax runs with --lam 0).

Minibatches: 256 rows drawn uniformly with replacement at every step, one draw per seed, so the
members that share a seed share every batch (as in `saejax sweep`; they draw other rows than
saejax does). torch.topk needs k as a Python int, so topk's members are vmapped in one group
per k (each group's tensors stacked on their own), all groups stepped by one Adam.

At the end each member's FVU (sum ||x_hat - x||^2 / sum ||x - mean x||^2) and L0 (mean number
of nonzero codes per example) are computed on all the data, in blocks of rows.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from experiments.extras import existing_file, import_torch, positive, whole

torch = import_torch()
grad, vmap = torch.func.grad, torch.func.vmap


FINAL_BLOCK = 4096  # rows per block of the final statistics (keeps (G, rows, H) small)


def pre_activation(W1, b1, b2, x):
    """pre = (x - b2) W1^T + b1, (M, H)."""
    return (x - b2) @ W1.T + b1


def relu_l1_codes(W1, b1, b2, x, l1):
    del l1
    return torch.relu(pre_activation(W1, b1, b2, x))


def topk_codes(W1, b1, b2, x, k: int):
    pre = pre_activation(W1, b1, b2, x)
    values, indices = torch.topk(pre, k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))


def relu_l1_loss(W1, b1, W2, b2, l1, x):
    """J of one relu-l1 member: reconstruction + l1 (1/m) sum_kj f_kj ||W2[:, j]||."""
    f = relu_l1_codes(W1, b1, b2, x, l1)
    x_hat = f @ W2.T + b2
    m = x.shape[0]
    return ((x_hat - x) ** 2).sum() / m + l1 * (f * torch.linalg.vector_norm(W2, dim=0)).sum() / m


def topk_loss(W1, b1, W2, b2, k: int, x):
    """J of one topk member: the reconstruction alone."""
    x_hat = topk_codes(W1, b1, b2, x, k) @ W2.T + b2
    return ((x_hat - x) ** 2).sum() / x.shape[0]


def init_member(seed: int, n: int, h: int, x_mean) -> list:
    """[W1, b1, W2, b2]: unit-norm normal decoder columns, W1 = W2^T, b1 = 0, b2 = mean(x)."""
    w = torch.randn(n, h, generator=torch.Generator().manual_seed(seed))
    W2 = w / torch.linalg.vector_norm(w, dim=0, keepdim=True)
    return [W2.T.contiguous(), torch.zeros(h), W2, x_mean.clone()]


class Group:
    """Members vmapped together: relu-l1's all (l1 traced), topk's those of one k (k static).

    ``params`` are the stacked [W1, b1, W2, b2] (leading axis: member). Every member gets its
    seed's batch; when all of them share one seed the batch is passed once, unbatched
    (``in_dims=None``), so that a layer's products over the members become one wide matmul.
    """

    def __init__(self, arch, members, n, h, x_mean, seeds):
        self.arch = arch
        self.batch_of = torch.tensor([seeds.index(s) for _, s in members])
        self.shared = len(seeds) == 1
        inits = [init_member(s, n, h, x_mean) for _, s in members]
        self.params = [torch.stack(p) for p in zip(*inits, strict=True)]
        if arch == "relu-l1":  # l1 is a per-member tensor, mapped like the params
            self.knob = torch.tensor([v for v, _ in members], dtype=torch.float32)
            loss, codes = relu_l1_loss, relu_l1_codes
        else:  # torch.topk's k is a Python int: one group per k, bound here
            k = members[0][0]
            self.knob = torch.zeros(len(members))  # unused, mapped for a uniform signature
            loss = lambda W1, b1, W2, b2, _, x: topk_loss(W1, b1, W2, b2, k, x)  # noqa: E731
            codes = lambda W1, b1, b2, x, _: topk_codes(W1, b1, b2, x, k)  # noqa: E731
        x_dim = None if self.shared else 0
        self.grad = vmap(grad(loss, argnums=(0, 1, 2, 3)), in_dims=(0, 0, 0, 0, 0, x_dim))
        self.codes = vmap(codes, in_dims=(0, 0, 0, None, 0))

    def set_grads(self, batches) -> None:
        """Each member's gradient on its seed's batch (batches: (seeds, B, N)), into the stacked
        tensors' .grad."""
        x = batches[0] if self.shared else batches[self.batch_of]
        for p, dp in zip(self.params, self.grad(*self.params, self.knob, x), strict=True):
            p.grad = dp

    @torch.no_grad()
    def project(self) -> None:
        """topk: every decoder column W2[g][:, j] back to unit norm."""
        if self.arch == "topk":
            W2 = self.params[2]
            W2 /= torch.linalg.vector_norm(W2, dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def final_stats(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(FVU, L0) of every member on all of x, in blocks of FINAL_BLOCK rows."""
        W1, b1, W2, b2 = self.params
        g = W1.shape[0]
        sq_err, active = torch.zeros(g, dtype=torch.float64), torch.zeros(g, dtype=torch.float64)
        for start in range(0, x.shape[0], FINAL_BLOCK):
            xb = x[start:start + FINAL_BLOCK]
            f = self.codes(W1, b1, b2, xb, self.knob)  # (G, rows, H)
            x_hat = torch.bmm(f, W2.transpose(1, 2)) + b2[:, None, :]
            sq_err += ((x_hat - xb) ** 2).sum((1, 2)).double()
            active += (f > 0).sum((1, 2)).double()
        total_variance = ((x.double() - x.double().mean(0)) ** 2).sum()
        return sq_err / total_variance, active / x.shape[0]


def make_groups(arch, knob_values, seeds, n, h, x_mean) -> list[Group]:
    """relu-l1: one group of every (l1, seed) member; topk: one group per k."""
    members = list(itertools.product(knob_values, seeds))
    if arch == "relu-l1":
        return [Group(arch, members, n, h, x_mean, seeds)]
    return [Group(arch, [mb for mb in members if mb[0] == k], n, h, x_mean, seeds)
            for k in dict.fromkeys(knob_values)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=existing_file, required=True,
                        help="an (M, N) float array, FILE.npy")
    parser.add_argument("--arch", choices=("relu-l1", "topk"), required=True)
    parser.add_argument("--l1", type=float, nargs="+", help="relu-l1: L1 coefficients")
    parser.add_argument("--k", type=positive, nargs="+", help="topk: latents kept per example")
    parser.add_argument("--seed", type=whole, nargs="+", default=[0],
                        help="seeds of the initialization and the minibatches")
    parser.add_argument("--n-hidden", type=positive, default=256)
    parser.add_argument("--steps", type=positive, default=2000)
    parser.add_argument("--batch-size", type=positive, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    knob_values = args.l1 if args.arch == "relu-l1" else args.k
    if not knob_values:
        parser.error(f"--arch {args.arch} needs --{'l1' if args.arch == 'relu-l1' else 'k'}")
    t0 = time.perf_counter()
    torch.manual_seed(min(args.seed))
    x = torch.from_numpy(np.load(args.data).astype(np.float32))
    m, n = x.shape
    seeds = list(dict.fromkeys(args.seed))
    groups = make_groups(args.arch, knob_values, seeds, n, args.n_hidden, x.mean(0))
    params = [p for group in groups for p in group.params]
    opt = torch.optim.Adam(params, lr=args.lr, fused=True)  # one kernel per tensor on CPU
    for _ in range(args.steps):
        batches = x[torch.randint(0, m, (len(seeds), args.batch_size))]  # (seeds, B, N)
        for group in groups:
            group.set_grads(batches)
        opt.step()
        for group in groups:
            group.project()
    stats = [group.final_stats(x) for group in groups]
    fvu = torch.cat([s[0] for s in stats])
    l0 = torch.cat([s[1] for s in stats])
    print(f"FVU = {float(fvu.mean()):.6f} L0 = {float(l0.mean()):.4f} mean over {len(fvu)} "
          f"members (FVU {float(fvu.min()):.4f} to {float(fvu.max()):.4f}, L0 "
          f"{float(l0.min()):.2f} to {float(l0.max()):.2f}), {args.steps} steps, "
          f"{time.perf_counter() - t0:.2f} seconds in the script")


if __name__ == "__main__":
    main()
