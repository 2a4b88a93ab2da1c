"""optim.fit: optax's L-BFGS in one scan, on a convex quadratic whose minimizer solves a linear
system, with autodiff or a hand-written gradient."""

import jax
import jax.numpy as jnp
import numpy as np

from saejax.optim.fit import lbfgs_scan

RNG = np.random.default_rng(0)
_B = RNG.normal(size=(5, 5))
A = _B @ _B.T + 5 * np.eye(5)  # symmetric positive definite: one minimizer, A^-1 b
b = RNG.normal(size=5)


def quadratic(params):
    x = params["x"]
    return 0.5 * x @ jnp.asarray(A) @ x - jnp.asarray(b) @ x


def test_a_quadratic_reaches_the_solution_of_its_linear_system():
    start = {"x": jnp.zeros(5)}
    params, values, final = jax.jit(lbfgs_scan, static_argnums=(0, 2))(quadratic, start, 20)
    x_star = np.linalg.solve(A, b)
    np.testing.assert_allclose(params["x"], x_star, rtol=1e-8, atol=1e-10)
    # J at the start of every iteration: 0 at x = 0, never rising, down to -b.x*/2 at the end
    assert values.shape == (20,) and values[0] == 0.0
    assert np.all(np.diff(np.asarray(values)) <= 1e-12)
    np.testing.assert_allclose(values[-1], -0.5 * b @ x_star, rtol=1e-10)
    np.testing.assert_allclose(final, quadratic(params), rtol=1e-15)  # J of the params returned


def test_a_hand_written_gradient_drives_it_to_the_same_minimizer():
    def value_and_grad(params):  # dJ/dx = A x - b, written out
        return quadratic(params), {"x": jnp.asarray(A) @ params["x"] - jnp.asarray(b)}

    run = jax.jit(lbfgs_scan, static_argnums=(0, 2, 3))
    hand, values, _ = run(quadratic, {"x": jnp.ones(5)}, 12, value_and_grad)
    np.testing.assert_allclose(hand["x"], np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(values[0], 0.5 * A.sum() - b.sum(), rtol=1e-12)  # J(ones)
