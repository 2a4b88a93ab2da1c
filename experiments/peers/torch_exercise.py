"""The UFLDL sparse autoencoder exercise in PyTorch: the benchmark peer of `saejax train`.

Command:   .venv/bin/python -m experiments.peers.torch_exercise --data ../shared/data/IMAGES_sparsenet.mat
Needs:     PyTorch (a benchmark peer only, never a saejax dependency): pip install -e '.[bench]'
Run time:  a few seconds on 2 CPU cores.
Expected:  one line ``J = ... iterations ... evaluations ... seconds`` (the whole process is what
           experiments.bench.exercise times).

What a PyTorch user would write, independent of saejax: sampleIMAGES.m and its normalization
in NumPy (10,000 random 8x8 patches, zero mean per patch, clipped to +-3 standard deviations,
rescaled to [0.1, 0.9]), UFLDL's initialization, sparseAutoencoderCost.m as autograd code, and
``torch.optim.LBFGS`` with a strong-Wolfe line search, history 100 and at most 400 iterations,
in float32.
"""

from __future__ import annotations

import time

import numpy as np

from experiments.extras import import_torch
from experiments.peers.exercise_setup import (
    BETA,
    LAM,
    N_HIDDEN,
    N_VISIBLE,
    RHO,
    exercise_data,
    parse_args,
)

torch = import_torch()


def main():
    args = parse_args(__doc__.splitlines()[0])
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    patches, _ = exercise_data(args.data, args.seed)
    x = torch.from_numpy(patches.astype(np.float32))
    n, h, rho, beta, lam = N_VISIBLE, N_HIDDEN, RHO, BETA, LAM
    r = (6.0 / (n + h + 1)) ** 0.5
    W1 = (torch.rand(h, n) * 2 * r - r).requires_grad_()
    W2 = (torch.rand(n, h) * 2 * r - r).requires_grad_()
    b1 = torch.zeros(h, requires_grad=True)
    b2 = torch.zeros(n, requires_grad=True)
    m = x.shape[0]
    evaluations = 0

    def cost():
        a2 = torch.sigmoid(x @ W1.T + b1)
        a3 = torch.sigmoid(a2 @ W2.T + b2)
        rho_hat = a2.mean(0)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return (0.5 * ((a3 - x) ** 2).sum() / m + 0.5 * lam * ((W1**2).sum() + (W2**2).sum())
                + beta * kl.sum())

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        J = cost()
        J.backward()
        return J

    opt = torch.optim.LBFGS([W1, b1, W2, b2], lr=1, max_iter=args.steps,
                            max_eval=args.steps * 5 // 4, history_size=100,
                            line_search_fn="strong_wolfe")
    opt.step(closure)
    with torch.no_grad():
        J = float(cost())
    iterations = opt.state[opt._params[0]]["n_iter"]
    print(f"J = {J:.6f}, {iterations} iterations, {evaluations} evaluations, "
          f"{time.perf_counter() - t0:.2f} seconds in the script")


if __name__ == "__main__":
    main()
