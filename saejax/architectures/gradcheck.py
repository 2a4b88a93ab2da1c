"""The family's three-way gradient check: analytic, autodiff and central differences, at points
drawn off the kinks of each loss (ReLU at 0, the top-k boundary, jumprelu's thresholds and
kernel), with jumprelu's pseudo-derivative checked against autodiff only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from saejax.differences import PAIRS, TOLERANCES, numerical_grad, relative_difference

# The knobs of the family's check, chosen so that each sparsity mechanism is at work on the small
# problem: relu-l1's penalty a visible share of J, topk keeping 3 of 5 latents per example,
# jumprelu's L0 term present (its gradient is the pseudo-derivative's).
FAMILY_KNOBS = {"l1": 0.3, "k": 3, "l0": 0.1}
# topk's and batchtopk's auxiliary loss in the check: a dead latent of every other index (3 of 5
# for H = 5), of which each example uses its top 2, weighted enough to be a visible share of J.
FAMILY_AUX = {"aux_k": 2, "aux_coeff": 0.25}
# Finite-difference step of the family's check, per dtype. Between kinks the family's J is a
# polynomial of low degree, so truncation is small and rounding (~ulp(J)/eps) dominates: on the
# default problem float64 agrees to ~2e-11 at 2e-5 and ~4e-10 at 1e-6 (measured). float32 takes
# 1e-3, small enough to stay inside a kink margin; jumprelu 1e-4 (``family_eps``): at 1e-3 its
# required margin, 10 eps times the problem's scale, is wider than any of 200 draws leaves
# between the pre-activations and their thresholds' kernels. At 1e-4, seeds 0-9 agree with
# finite differences to at most 5.5e-3, against the limit 2e-2 (measured).
FAMILY_EPS = {"float64": 2e-5, "float32": 1e-3}
FAMILY_EPS_OF = {("jumprelu", "float32"): 1e-4}
# The least distance from a kink (in pre-activation units) of a point the family is checked at.
KINK_MARGIN = 1e-3
# jumprelu's bandwidth at the check's point inside the kernel: wide enough that the threshold,
# a quarter bandwidth from a pre-activation, is KINK_MARGIN and more from the jump.
FAMILY_KERNEL_BANDWIDTH = 0.01
# A point is redrawn at most this many times to get off the kinks.
MAX_DRAWS = 200
# The params that get the paper's pseudo-derivative rather than the true one: checked against
# autodiff (whose custom VJP is that pseudo-derivative) and reported, not gated, against
# finite differences, which see the true derivative.
PSEUDO_DERIVATIVE = {"jumprelu": ("log_threshold",)}


def family_eps(arch: str, dtype) -> float:
    """The default finite-difference step of ``arch``'s check in ``dtype``: ``FAMILY_EPS``, but
    where ``FAMILY_EPS_OF`` names the pair (1e-6 for a dtype neither names)."""
    name = jnp.dtype(dtype).name
    return FAMILY_EPS_OF.get((arch, name), FAMILY_EPS.get(name, 1e-6))


def _sorted_desc(values, axis=-1):
    return -np.sort(-values, axis=axis)


def kink_margin(params, x, hyper, arch: str, options=None, dead_H=None,
                kernel: bool = True) -> float:
    """The distance of a point from the nearest kink of ``arch``'s loss, in pre-activation units.

    Between kinks the family's J is smooth, so central differences of step eps converge to the
    gradient when every pre-activation moves by less than this margin. The kinks:

      every arch   pre = 0 (the ReLU; conservative for jumprelu, whose theta > 0)
      topk         each example's gap between its k-th and (k+1)-th largest pre
      batchtopk    the batch's gap between its (k m)-th and (k m + 1)-th largest pre
      aux loss     (topk, batchtopk with ``dead_H`` and aux_coeff > 0) each example's gap
                   between its aux_k-th and (aux_k + 1)-th largest pre among the dead latents
      jumprelu     |pre - theta| - bandwidth / 2: outside the pseudo-derivative's kernel, where
                   it is 0 as the true derivative is; |pre - theta| with ``kernel=False`` (the
                   jump itself, for a point inside the kernel on purpose)

    Returns the smallest of these (a float; inf if there is none).
    """
    from saejax.architectures import Options, topk

    options = Options() if options is None else options
    p = {key: np.asarray(v, np.float64) for key, v in params.items()}
    pre = (np.asarray(x, np.float64) - p["b2"][None, :]) @ p["W1"].T + p["b1"][None, :]
    m, h = pre.shape
    gaps = [np.min(np.abs(pre))]
    k = int(hyper.k) if arch in ("topk", "batchtopk") else None
    if arch == "topk" and k < h:
        s = _sorted_desc(pre)
        gaps.append(np.min(s[:, k - 1] - s[:, k]))
    if arch == "batchtopk" and k * m < m * h:
        s = _sorted_desc(pre.reshape(-1))
        gaps.append(s[k * m - 1] - s[k * m])
    if arch in ("topk", "batchtopk") and topk.uses_aux(options, dead_H):
        dead = np.asarray(dead_H, bool)
        a = min(options.aux_k, h)
        if a < dead.sum():
            s = _sorted_desc(pre[:, dead])
            gaps.append(np.min(s[:, a - 1] - s[:, a]))
    if arch == "jumprelu":
        theta = np.exp(p["log_threshold"])[None, :]
        gaps.append(np.min(np.abs(pre - theta)) - (0.5 * options.bandwidth if kernel else 0.0))
    return float(min(gaps))


def required_margin(params, x, eps: float) -> float:
    """The margin a point needs for central differences of step eps: ``KINK_MARGIN``, or ten
    times the most one perturbed entry can move a pre-activation (eps |x - b2| through W1,
    eps |W1| through b2, eps through b1, eps theta through log_threshold), whichever is larger."""
    xc = np.abs(np.asarray(x, np.float64) - np.asarray(params["b2"], np.float64)[None, :])
    scale = max(1.0, float(xc.max()), float(np.abs(np.asarray(params["W1"])).max()))
    if "log_threshold" in params:
        scale = max(scale, float(np.exp(np.asarray(params["log_threshold"])).max()))
    return max(KINK_MARGIN, 10.0 * eps * scale)


def _family_draw(rng, arch: str, n_visible: int, n_hidden: int, m: int, dtype):
    # NumPy's generator: a point costs microseconds, where jax.random's first calls compile.
    w = rng.standard_normal((n_visible, n_hidden))
    W2 = w / np.linalg.norm(w, axis=0, keepdims=True)  # unit columns, as at initialization
    params = {
        # Away from the initialization's symmetries (W1 = W2^T, unit columns, zero biases), so
        # that a transposed or a missing term shows.
        "W1": W2.T + 0.3 * rng.standard_normal((n_hidden, n_visible)),
        "b1": 0.2 * rng.standard_normal(n_hidden),
        "W2": W2 * rng.uniform(0.5, 1.5, (1, n_hidden)),
        "b2": 0.2 * rng.standard_normal(n_visible),
    }
    if arch == "jumprelu":  # thresholds that silence a good share of the codes
        params["log_threshold"] = np.log(rng.uniform(0.2, 0.8, n_hidden))
    if arch == "batchtopk":
        params["threshold"] = np.asarray(0.5)
    x = rng.standard_normal((m, n_visible))
    return ({k: jnp.asarray(v, dtype) for k, v in params.items()}, jnp.asarray(x, dtype))


def _into_kernel(params, x, bandwidth: float) -> dict:
    """jumprelu's params with each threshold moved to a quarter bandwidth below its latent's
    largest pre-activation (where that exceeds the bandwidth): one example per latent inside the
    kernel, still active, a quarter bandwidth from the jump."""
    from saejax.architectures import common

    top_H = jnp.max(common.pre_activation(params, x), axis=0)
    theta_H = jnp.where(top_H > bandwidth, top_H - 0.25 * bandwidth,
                        jnp.exp(params["log_threshold"]))
    return {**params, "log_threshold": jnp.log(theta_H)}


def family_problem(arch: str, n_visible: int = 8, n_hidden: int = 5, m: int = 10, hyper=None,
                   options=None, dead_H=None, dtype=jnp.float64, seed: int = 0, eps=None,
                   margin=None, inside_kernel: bool = False):
    """A small random problem of a family architecture, drawn off the kinks of its loss.

    The point, from NumPy's ``default_rng([seed, i])`` for draw i: unit decoder columns (as
    ``architectures.init_params`` draws them) scaled by U(0.5, 1.5), W1 their transpose moved by
    0.3 N(0, 1), biases 0.2 N(0, 1), jumprelu's thresholds U(0.2, 0.8), batchtopk's 0.5; x ~
    N(0, 1) of shape (m, n_visible). The first draw whose ``kink_margin`` exceeds ``margin``
    (default ``required_margin`` for the step eps, itself ``family_eps`` by default) is
    returned, so the same arguments give the same point. ValueError after ``MAX_DRAWS`` draws.

    ``inside_kernel`` (jumprelu): the thresholds are then moved into the kernel of the
    pseudo-derivative (``_into_kernel``), so that its log_threshold gradient is nonzero, and the
    margin is measured to the jump itself (``kink_margin(kernel=False)``): finite differences
    still see a smooth J there, whose true log_threshold derivative is 0.

    Returns:
      ``(params, x, margin)``: the point and its ``kink_margin``.
    """
    from saejax.architectures import Options
    from saejax.losses import Hyper

    hyper = Hyper(0.01, 3.0, 1e-4, **FAMILY_KNOBS) if hyper is None else hyper
    options = Options() if options is None else options
    dtype = jnp.dtype(dtype)
    eps = family_eps(arch, dtype) if eps is None else eps
    for draw in range(MAX_DRAWS):
        rng = np.random.default_rng([seed, draw])
        params, x = _family_draw(rng, arch, n_visible, n_hidden, m, dtype)
        if inside_kernel:
            params = _into_kernel(params, x, options.bandwidth)
        need = required_margin(params, x, eps) if margin is None else margin
        got = kink_margin(params, x, hyper, arch, options, dead_H, kernel=not inside_kernel)
        if got > need:
            return params, x, got
    raise ValueError(f"no point of {arch} with a kink margin above {need:.1e} in {MAX_DRAWS} "
                     f"draws of {n_visible}-{n_hidden}-{n_visible}, m={m}; use a smaller eps or "
                     "a smaller problem.")


def family_dead(n_hidden: int):
    """The dead latents of the family's check: every other one, starting with the first."""
    return jnp.arange(n_hidden) % 2 == 0


def family_gradients(params, x, hyper, arch: str, options=None, dead_H=None, eps=None) -> dict:
    """The analytic, autodiff and numerical gradients of a family member's J.

    Returns ``{"analytic": g, "autodiff": g, "numerical": g}``, each a dict like params.
    """
    from saejax import architectures

    options = architectures.Options() if options is None else options
    eps = family_eps(arch, jnp.result_type(params["W1"])) if eps is None else eps

    def f(p):
        return architectures.loss(p, x, hyper, arch, options, dead_H)

    # Fresh closures, compiled once each: a function jitted before would come from jax's cache
    # and miss a change to the module it calls (a test plants a wrong gradient that way).
    def analytic(p):
        return architectures.terms_and_grad(p, x, hyper, arch, options, dead_H)[1]

    return {"analytic": jax.jit(analytic)(params),
            "autodiff": jax.jit(jax.grad(f))(params),
            "numerical": numerical_grad(f, params, eps)}


def family_check(params, x, hyper, arch: str, options=None, dead_H=None, eps=None,
                 inside_kernel: bool = False) -> dict:
    """The three-way check of a family member's J at one point (best drawn by
    ``family_problem``, off the kinks).

    Every block is gated analytic~autodiff; the finite differences are gated over all blocks
    together except ``PSEUDO_DERIVATIVE``'s (jumprelu's log_threshold), whose numbers against
    them are reported only. Returns a JSON-ready dict with ``arch``, ``variant`` ("", "aux loss"
    when the auxiliary loss is on, "inside the kernel" for ``family_problem``'s point of that
    name), ``dtype``, ``eps``, ``margin``, ``differences`` (pair -> block ->
    relative difference, ``"all"`` over the gated blocks), ``autodiff_only`` (the blocks not
    gated against finite differences), ``tolerances`` and ``passed``.
    """
    from saejax import architectures
    from saejax.architectures import topk

    options = architectures.Options() if options is None else options
    dtype = jnp.result_type(params["W1"]).name
    eps = family_eps(arch, dtype) if eps is None else eps
    g = family_gradients(params, x, hyper, arch, options, dead_H, eps)
    autodiff_only = PSEUDO_DERIVATIVE.get(arch, ())
    tolerances = TOLERANCES.get(dtype, TOLERANCES["float32"])
    differences = {}
    for pair in PAIRS:
        left, right = pair.split("~")
        a, b = g[left], g[right]
        d = {key: relative_difference(a[key], b[key]) for key in params}
        gated = ([key for key in params if key not in autodiff_only] if "numerical" in pair
                 else list(params))
        d["all"] = relative_difference({key: a[key] for key in gated},
                                       {key: b[key] for key in gated})
        differences[pair] = d
    passed = all(differences[p]["all"] <= tolerances[p] for p in PAIRS) and all(
        differences["analytic~autodiff"][key] <= tolerances["analytic~autodiff"]
        for key in params)
    aux = arch in ("topk", "batchtopk") and topk.uses_aux(options, dead_H)
    variant = "aux loss" if aux else "inside the kernel" if inside_kernel else ""
    return {"arch": arch, "variant": variant, "dtype": dtype, "eps": float(eps),
            "bandwidth": float(options.bandwidth) if arch == "jumprelu" else None,
            "margin": kink_margin(params, x, hyper, arch, options, dead_H,
                                  kernel=not inside_kernel),
            "differences": differences, "autodiff_only": list(autodiff_only),
            "tolerances": tolerances, "passed": bool(passed)}


def family_checks(arch: str, n_visible: int, n_hidden: int, m: int, hyper, dtype: str = "float64",
                  eps=None, seed: int = 0) -> list:
    """``family_check`` of ``arch`` on ``family_problem``'s points: for topk and batchtopk twice,
    without and with the auxiliary loss (``family_dead``'s latents, ``FAMILY_AUX``); for jumprelu
    twice, off the kernel (the pseudo-derivative 0, as finite differences see it) and inside it
    (``FAMILY_KERNEL_BANDWIDTH``: the pseudo-derivative nonzero, checked against autodiff)."""
    from saejax.architectures import Options

    runs = [(Options(), None, False)]
    if arch in ("topk", "batchtopk"):
        runs.append((Options(**FAMILY_AUX), family_dead(n_hidden), False))
    if arch == "jumprelu":
        runs.append((Options(bandwidth=FAMILY_KERNEL_BANDWIDTH), None, True))
    results = []
    for options, dead_H, inside in runs:
        params, x, _ = family_problem(arch, n_visible, n_hidden, m, hyper, options, dead_H,
                                      dtype, seed, eps, inside_kernel=inside)
        results.append(family_check(params, x, hyper, arch, options, dead_H, eps, inside))
    return results


def format_family_table(result: dict) -> str:
    """A fixed-width text table of one ``family_check`` result: blocks down, pairs across; a
    block checked against autodiff only is marked with *."""
    from saejax.architectures import param_keys

    variant = f" ({result['variant']})" if result["variant"] else ""
    bandwidth = "" if result["bandwidth"] is None else f", bandwidth {result['bandwidth']:g}"
    title = (f"loss | arch={result['arch']}{variant} | {result['dtype']} | eps="
             f"{result['eps']:.0e}, kink margin {result['margin']:.2e}{bandwidth}")
    head = f"{'block':<14}" + "".join(f"{p:>22}" for p in PAIRS)
    lines = [title, head, "-" * len(head)]
    blocks = result["differences"]["analytic~autodiff"]
    for block in [k for k in param_keys(result["arch"]) if k in blocks] + ["all"]:
        row = "".join(f"{result['differences'][p][block]:>22.3e}" for p in PAIRS)
        name = block + ("*" if block in result["autodiff_only"] else "")
        lines.append(f"{name:<14}{row}")
    tol = "".join(f"{result['tolerances'][p]:>22.0e}" for p in PAIRS)
    lines.append(f"{'limit':<14}{tol}")
    if result["autodiff_only"]:
        lines.append(f"* {', '.join(result['autodiff_only'])}: the pseudo-derivative, gated "
                     "against autodiff only; finite differences see the true derivative")
    lines.append("PASS" if result["passed"] else "FAIL")
    return "\n".join(lines)
