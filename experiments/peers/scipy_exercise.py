"""The UFLDL sparse autoencoder exercise in NumPy + SciPy: the benchmark peer a MATLAB port uses.

Command:   .venv/bin/python -m experiments.peers.scipy_exercise --data ../shared/data/IMAGES_sparsenet.mat
Run time:  tens of seconds on 2 CPU cores.
Expected:  one line ``J = ... iterations ... evaluations ... seconds``; experiments.bench.exercise
           times the whole process.

The same sampling as experiments.peers.torch_exercise (exercise_setup.py: sampleIMAGES.m in
NumPy), the vectorized NumPy cost and gradient of numpy_sae.py (sparseAutoencoderCost.m), and
SciPy's L-BFGS-B in float64 with 100 corrections and at most 400 iterations, as minFunc is
configured in the exercise.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize

from experiments.peers import numpy_sae
from experiments.peers.exercise_setup import (
    BETA,
    LAM,
    N_HIDDEN,
    N_VISIBLE,
    RHO,
    exercise_data,
    parse_args,
)


def main():
    args = parse_args(__doc__.splitlines()[0])
    t0 = time.perf_counter()
    x, rng = exercise_data(args.data, args.seed)
    n, h, rho, beta, lam = N_VISIBLE, N_HIDDEN, RHO, BETA, LAM
    r = (6.0 / (n + h + 1)) ** 0.5
    params = {"W1": rng.uniform(-r, r, (h, n)), "b1": np.zeros(h),
              "W2": rng.uniform(-r, r, (n, h)), "b2": np.zeros(n)}

    def fun(theta):
        J, g = numpy_sae.value_and_grad(numpy_sae.unravel(theta, n, h), x, rho, beta, lam)
        return J, numpy_sae.ravel(g)

    res = scipy.optimize.minimize(fun, numpy_sae.ravel(params), jac=True, method="L-BFGS-B",
                                  options={"maxiter": args.steps, "maxcor": 100})
    print(f"J = {res.fun:.6f}, {res.nit} iterations, {res.nfev} evaluations, "
          f"{time.perf_counter() - t0:.2f} seconds in the script")


if __name__ == "__main__":
    main()
