"""The three-way gradient check of the sigmoid network: analytic, autodiff and numerical, and
the report of ``saejax gradcheck`` over every architecture.

The measure is UFLDL's: ||a - b|| / ||a + b|| over all parameters flattened, and per block
(``saejax.differences``); the family's check, at points drawn off its kinks, lives in
``saejax.architectures.gradcheck``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax import grads, losses, schema
from saejax.architectures.gradcheck import (
    FAMILY_KNOBS,
    family_checks,
    family_problem,
    format_family_table,
    kink_margin,
    required_margin,
)
from saejax.differences import (
    NUMERICAL_EPS,
    PAIRS,
    TOLERANCES,
    block_differences,
    numerical_grad,
    relative_difference,
)
from saejax.model import PARAM_KEYS, init_params

# The measures come from saejax.differences and the family's check from
# saejax.architectures.gradcheck; both are named here too, where a gradient check is looked for.
__all__ = ["FAMILY_KNOBS", "NUMERICAL_EPS", "PAIRS", "TERM_FUNCTIONS", "TOLERANCES",
           "block_differences", "check", "family_checks", "family_problem", "format_report",
           "format_table", "gradients", "kink_margin", "numerical_grad", "problem",
           "relative_difference", "report", "required_margin", "ufldl_sanity_check"]

# Each term of J as (value, analytic gradient), both called as f(params, x, hyper, penalty, arch)
# with arch = {"decoder": ..., "tied": ...}.
TERM_FUNCTIONS = {
    "loss": (
        lambda p, x, h, pen, arch: losses.loss(p, x, h, pen, **arch),
        lambda p, x, h, pen, arch: grads.analytic_grad(p, x, h, pen, **arch),
    ),
    "reconstruction": (
        lambda p, x, h, pen, arch: losses.reconstruction(p, x, **arch),
        lambda p, x, h, pen, arch: grads.reconstruction_grad(p, x, **arch),
    ),
    "weight_decay": (
        lambda p, x, h, pen, arch: losses.weight_decay(p, h.lam, tied=arch["tied"]),
        lambda p, x, h, pen, arch: grads.weight_decay_grad(p, h.lam, tied=arch["tied"]),
    ),
    "sparsity": (
        lambda p, x, h, pen, arch: losses.sparsity(p, x, h, pen, tied=arch["tied"]),
        lambda p, x, h, pen, arch: grads.sparsity_grad(p, x, h, pen, tied=arch["tied"]),
    ),
}
if tuple(TERM_FUNCTIONS) != schema.TERMS:
    raise ImportError(f"gradcheck.TERM_FUNCTIONS {tuple(TERM_FUNCTIONS)} must list schema.TERMS "
                      f"{schema.TERMS} in order.")


def gradients(params, x, hyper, penalty: str = "kl", term: str = "loss", eps=None, *,
              decoder: str = "sigmoid", tied: bool = False) -> dict:
    """The analytic, autodiff and numerical gradients of one term of J.

    Returns ``{"analytic": g, "autodiff": g, "numerical": g}``, each a dict like params.
    """
    arch = {"decoder": decoder, "tied": tied}
    if term not in TERM_FUNCTIONS:
        raise ValueError(f"unknown term {term!r}; choose one of {sorted(TERM_FUNCTIONS)}.")
    value, analytic = TERM_FUNCTIONS[term]
    dtype = jnp.result_type(params["W1"]).name
    eps = NUMERICAL_EPS.get(dtype, 1e-4) if eps is None else eps

    def f(p):
        return value(p, x, hyper, penalty, arch)

    return {
        "analytic": analytic(params, x, hyper, penalty, arch),
        "autodiff": jax.grad(f)(params),
        "numerical": numerical_grad(f, params, eps),
    }


def check(params, x, hyper, penalty: str = "kl", term: str = "loss", eps=None, *,
          decoder: str = "sigmoid", tied: bool = False) -> dict:
    """The three-way check of one term: differences per pair and block, against tolerances.

    Returns a JSON-ready dict with ``term``, ``penalty``, ``decoder``, ``tied``, ``dtype``,
    ``differences`` (pair -> block -> relative difference), ``tolerances`` (pair -> limit) and
    ``passed``.
    """
    g = gradients(params, x, hyper, penalty, term, eps, decoder=decoder, tied=tied)
    dtype = jnp.result_type(params["W1"]).name
    tolerances = TOLERANCES.get(dtype, TOLERANCES["float32"])
    differences = {}
    for pair in PAIRS:
        left, right = pair.split("~")
        differences[pair] = block_differences(g[left], g[right])
    # The gate is UFLDL's measure over all parameters for every pair, plus each block for
    # analytic~autodiff. Per-block numbers against finite differences are reported, not gated:
    # a block with a small gradient (b2, where a3 ~ x) carries a relative finite-difference
    # error far above the whole vector's, while autodiff checks that block to rounding.
    passed = all(differences[p]["all"] <= tolerances[p] for p in PAIRS) and all(
        differences["analytic~autodiff"][k] <= tolerances["analytic~autodiff"]
        for k in params
    )
    return {
        "term": term,
        "penalty": penalty,
        "decoder": decoder,
        "tied": tied,
        "dtype": dtype,
        "differences": differences,
        "tolerances": tolerances,
        "passed": bool(passed),
    }


def problem(n_visible=8, n_hidden=5, m=10, dtype=jnp.float64, seed=0, tied=False):
    """A small random problem for the check: ``(params, x)``, x uniform in [0.05, 0.95]."""
    k_params, k_x = jax.random.split(jax.random.key(seed))
    params = init_params(k_params, n_visible, n_hidden, dtype, tied=tied)
    x = jax.random.uniform(k_x, (m, n_visible), dtype, 0.05, 0.95)
    return params, x


def ufldl_sanity_check(x=(2.0, 88.0), eps: float = 1e-4) -> dict:
    """UFLDL's check of numerical_grad itself on h(x) = x1^2 + 3 x1 x2 (float64 if enabled).

    The exact gradient is (2 x1 + 3 x2, 3 x1). Returns the numerical and exact gradients and
    their relative difference (about 2e-12 at x = [2, 88] in float64).
    """
    x = jnp.asarray(x)

    def h(p):
        return p["x"][0] ** 2 + 3 * p["x"][0] * p["x"][1]

    numerical = numerical_grad(h, {"x": x}, eps)["x"]
    exact = jnp.array([2 * x[0] + 3 * x[1], 3 * x[0]])
    return {
        "x": np.asarray(x).tolist(),
        "numerical": np.asarray(numerical).tolist(),
        "exact": np.asarray(exact).tolist(),
        "difference": relative_difference(numerical, exact),
    }


def format_table(result: dict) -> str:
    """A fixed-width text table of one ``check`` result: blocks down, pairs across."""
    arch = f"{result['decoder']} decoder" + (", tied" if result["tied"] else "")
    title = f"{result['term']} | penalty={result['penalty']} | {arch} | {result['dtype']}"
    head = f"{'block':<6}" + "".join(f"{p:>22}" for p in PAIRS)
    lines = [title, head, "-" * len(head)]
    blocks = result["differences"]["analytic~autodiff"]
    for block in [k for k in PARAM_KEYS if k in blocks] + ["all"]:
        row = "".join(f"{result['differences'][p][block]:>22.3e}" for p in PAIRS)
        lines.append(f"{block:<6}{row}")
    tol = "".join(f"{result['tolerances'][p]:>22.0e}" for p in PAIRS)
    lines.append(f"{'limit':<6}{tol}")
    lines.append("PASS" if result["passed"] else "FAIL")
    return "\n".join(lines)


def report(n_visible: int = 8, n_hidden: int = 5, m: int = 10, penalties=("kl",),
           terms=("loss",), decoders=("sigmoid",), tieds=(False,), hyper=None,
           dtype: str = "float64", eps=None, seed: int = 0, stacked: dict | None = None,
           archs=("sigmoid",), others: dict | None = None) -> dict:
    """Every combination's ``check`` on one small problem and UFLDL's sanity check of
    ``numerical_grad``, with ``stacked`` (a ``saejax.stacked.check`` result) and ``others``
    (``{"cnn": ..., "rica": ..., "sparse_coding": ..., "ica": ...}``, each its module's
    ``check`` result, as asked) beside them; ``passed`` is True only if all pass.

    ``archs`` (``schema.ARCHS``): "sigmoid" runs the combinations above; each family
    architecture adds its ``family_checks`` (knobs l1, k, l0 from ``hyper``; the finite-difference
    step ``eps``, else ``family_eps``) at points drawn off its kinks.

    Returns:
      ``{"problem", "sanity", "checks", "family", "stacked", "cnn", "rica", "sparse_coding",
      "ica", "passed"}``
      (``None`` for a network not checked); ``format_report`` prints it.
    """
    hyper = losses.Hyper(0.01, 3.0, 1e-4) if hyper is None else hyper
    unknown = [a for a in archs if a not in schema.ARCHS]
    if unknown:
        raise ValueError(f"unknown architectures {unknown}; choose from {list(schema.ARCHS)}.")
    results = []
    if "sigmoid" in archs:
        for tied in tieds:
            params, x = problem(n_visible, n_hidden, m, jnp.dtype(dtype), seed, tied)
            results += [check(params, x, hyper, penalty, term, eps, decoder=decoder, tied=tied)
                        for decoder in decoders for penalty in penalties for term in terms]
    family = [r for arch in archs if arch != "sigmoid"
              for r in family_checks(arch, n_visible, n_hidden, m, hyper, dtype, eps, seed)]
    net = stacked
    sanity = ufldl_sanity_check()
    sanity["passed"] = dtype != "float64" or sanity["difference"] < 1e-9
    passed = (sanity["passed"] and all(r["passed"] for r in results + family)
              and all(n is None or n["passed"] for n in (net, *(others or {}).values())))
    setup = {"n_visible": n_visible, "n_hidden": n_hidden, "m": m, "rho": float(hyper.rho),
             "beta": float(hyper.beta), "lam": float(hyper.lam), "dtype": dtype, "seed": seed,
             "archs": list(archs),
             **{knob: None if getattr(hyper, knob) is None else cast(getattr(hyper, knob))
                for knob, cast in (("l1", float), ("k", int), ("l0", float))}}
    return {"problem": setup, "sanity": sanity, "checks": results, "family": family,
            "stacked": net,
            **{k: (others or {}).get(k) for k in ("cnn", "rica", "sparse_coding", "ica")},
            "passed": bool(passed)}


def format_report(result: dict) -> str:
    """``report``'s result as text: the problem, the sanity check, a table per check."""
    p, sanity = result["problem"], result["sanity"]
    lines = [f"network {p['n_visible']}-{p['n_hidden']}-{p['n_visible']}, m={p['m']}, "
             f"rho={p['rho']}, beta={p['beta']}, lam={p['lam']}, {p['dtype']}, seed={p['seed']}",
             f"UFLDL sanity check of numerical_grad, h(x) = x1^2 + 3 x1 x2 at x = {sanity['x']}: "
             f"relative difference {sanity['difference']:.2e}\n"]
    lines += [format_table(r) + "\n" for r in result["checks"]]
    if result.get("family"):
        lines.append(f"the family: {p['n_visible']}-{p['n_hidden']}-{p['n_visible']}, m={p['m']}, "
                     f"lam={p['lam']}, l1={p['l1']}, k={p['k']}, l0={p['l0']}; each point drawn "
                     "off its loss's kinks (gradcheck.family_problem)\n")
        lines += [format_family_table(r) + "\n" for r in result["family"]]
    titles = {"stacked": f"stacked network {p['n_visible']}-{p['n_hidden']}-{p['n_hidden']}-3 "
                         "fine-tuning gradient",
              "cnn": "convolutional network 12x12 images, 2 filters 5x5, pool 2, 4 classes",
              "rica": "RICA 6 filters, 20 patches of 9 pixels, lambda 0.3, epsilon 1e-2",
              "sparse_coding": "topographic sparse coding, feature step: 16 features, 10 "
                               "patches of 8 pixels, 5 random groups",
              "ica": "orthonormal ICA 4 filters, 20 patches of 6 pixels, epsilon 1e-2"}
    for key, title in titles.items():
        net = result.get(key)
        if net is None:
            continue
        lines.append(f"{title} | {net['dtype']}")
        lines += [f"{pair:<22}{value:>12.3e}   limit {net['tolerances'][pair]:.0e}"
                  for pair, value in net["differences"].items()]
        lines.append(("PASS" if net["passed"] else "FAIL") + "\n")
    lines.append("all checks passed" if result["passed"] else "SOME CHECKS FAILED")
    return "\n".join(lines)
