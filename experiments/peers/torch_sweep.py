"""An adam sweep over rho x beta in PyTorch (torch.func ensemble): the peer of `saejax sweep`.

Command:   .venv/bin/python -m experiments.peers.torch_sweep --data ../shared/data/IMAGES_sparsenet.mat
           --rho R1 R2 ... --beta B1 B2 ... [--steps 2000] [--batch-size 256] [--lr 0.01]
Needs:     PyTorch (a benchmark peer only, never a saejax dependency): pip install -e '.[bench]'
Run time:  about 30 s on 2 CPU cores for 64 members and 2,000 steps (13 ms a step measured).
Expected:  one line ``J = ... mean over ... members ... seconds in the script``; the whole process
           is what experiments.bench.adam_sweep times.

What a PyTorch user would write for an ensemble, independent of saejax: one member per
(rho, beta) pair, their parameters stacked along a leading axis, ``torch.func.vmap`` of
``torch.func.grad`` of one member's functional loss (sparseAutoencoderCost.m, each member with
its own rho and beta), and ``torch.optim.Adam`` on the stacked tensors, in float32.

Adam on the stacked tensors is exactly per-member Adam: its moments, bias corrections and update
are elementwise, every member takes the same number of steps, and member g's slice of each
stacked gradient is member g's own gradient (vmap of grad, no mixing across members).

As in `saejax sweep` with one seed, every member starts from the same UFLDL initialization and
sees the same minibatch at each step (256 rows drawn uniformly with replacement). Patches:
sampleIMAGES.m in NumPy from an IMAGES.mat (experiments/peers/exercise_setup.py), or a .npy of
patches (M, N) as given. rho_hat is clipped to [1e-6, 1 - 1e-6] like saejax's KL, so no
member's J can turn into inf.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.extras import existing_file, import_torch, positive, whole
from experiments.peers.exercise_setup import LAM, N_HIDDEN, exercise_data

torch = import_torch()
grad, vmap = torch.func.grad, torch.func.vmap

RHO_HAT_EPS = 1e-6


def member_loss(W1, b1, W2, b2, rho, beta, x, lam):
    """J of one member: reconstruction + weight decay + beta sum_j KL(rho || rho_hat_j)."""
    a2 = torch.sigmoid(x @ W1.T + b1)
    a3 = torch.sigmoid(a2 @ W2.T + b2)
    rho_hat = a2.mean(0).clamp(RHO_HAT_EPS, 1 - RHO_HAT_EPS)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return (0.5 * ((a3 - x) ** 2).sum() / x.shape[0]
            + 0.5 * lam * ((W1**2).sum() + (W2**2).sum()) + beta * kl.sum())


MEMBERS = (0, 0, 0, 0, 0, 0, None, None)  # vmap axes: params, rho, beta per member; x, lam shared
ensemble_loss = vmap(member_loss, in_dims=MEMBERS)
ensemble_grad = vmap(grad(member_loss, argnums=(0, 1, 2, 3)), in_dims=MEMBERS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=existing_file, required=True,
                        help="IMAGES.mat (UFLDL layout) or patches .npy")
    parser.add_argument("--rho", type=float, nargs="+", required=True)
    parser.add_argument("--beta", type=float, nargs="+", required=True)
    parser.add_argument("--lam", type=float, default=LAM)
    parser.add_argument("--steps", type=positive, default=2000)
    parser.add_argument("--batch-size", type=positive, default=256)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=whole, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    if args.data.endswith(".npy"):
        patches = np.load(args.data)
    else:
        patches, _ = exercise_data(args.data, args.seed)
    x = torch.from_numpy(patches.astype(np.float32))
    m, n = x.shape
    rho, beta = (torch.tensor(v, dtype=torch.float32).flatten()
                 for v in np.meshgrid(args.rho, args.beta, indexing="ij"))
    g, h = len(rho), N_HIDDEN
    r = (6.0 / (n + h + 1)) ** 0.5
    W1, W2 = torch.rand(h, n) * 2 * r - r, torch.rand(n, h) * 2 * r - r
    params = [p.expand(g, *p.shape).clone() for p in (W1, torch.zeros(h), W2, torch.zeros(n))]
    opt = torch.optim.Adam(params, lr=args.lr, fused=True)  # one kernel per tensor on CPU
    for _ in range(args.steps):
        batch = x[torch.randint(0, m, (args.batch_size,))]
        for p, dp in zip(params, ensemble_grad(*params, rho, beta, batch, args.lam), strict=True):
            p.grad = dp
        opt.step()
    with torch.no_grad():
        J = ensemble_loss(*params, rho, beta, x, args.lam)
    print(f"J = {float(J.mean()):.6f} mean over {g} members (min {float(J.min()):.4f}, max "
          f"{float(J.max()):.4f}), {args.steps} steps, {time.perf_counter() - t0:.2f} seconds "
          "in the script")


if __name__ == "__main__":
    main()
