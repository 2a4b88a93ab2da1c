"""The ``saejax`` command; the only place that parses arguments."""

from __future__ import annotations

import argparse
import json
import sys

PENALTY_NAMES = ("kl", "squared", "l1")
TERM_NAMES = ("loss", "reconstruction", "weight_decay", "sparsity")


def _add_gradcheck(sub) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="compare analytic, autodiff and numerical gradients on a small network",
        description=(
            "Three-way gradient check: the hand-written gradient against jax.grad, and both "
            "against central finite differences, per parameter block, with UFLDL's relative "
            "difference ||a-b||/||a+b||. Exits 1 if any difference exceeds its tolerance."
        ),
    )
    p.add_argument("--n-visible", type=int, default=8, help="input width N (default 8)")
    p.add_argument("--n-hidden", type=int, default=5, help="hidden units H (default 5)")
    p.add_argument("--m", type=int, default=10, help="number of examples (default 10)")
    p.add_argument(
        "--penalty", nargs="+", choices=[*PENALTY_NAMES, "all"], default=["all"],
        help="sparsity penalties to check (default: all three)",
    )
    p.add_argument(
        "--term", nargs="+", choices=[*TERM_NAMES, "all"], default=["loss"],
        help="which function to differentiate: the whole loss (default), one term, or all",
    )
    p.add_argument("--rho", type=float, default=0.01, help="sparsity target rho (default 0.01)")
    p.add_argument("--beta", type=float, default=3.0, help="sparsity weight beta (default 3)")
    p.add_argument("--lam", type=float, default=1e-4, help="weight decay lambda (default 1e-4)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--eps", type=float, default=None, help="finite-difference step (default: per dtype)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_gradcheck)


def _gradcheck(args) -> int:
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from saejax import gradcheck
    from saejax.losses import Hyper

    penalties = PENALTY_NAMES if "all" in args.penalty else tuple(args.penalty)
    terms = TERM_NAMES if "all" in args.term else tuple(args.term)
    params, x = gradcheck.problem(
        args.n_visible, args.n_hidden, args.m, jnp.dtype(args.dtype), args.seed
    )
    hyper = Hyper(args.rho, args.beta, args.lam)
    results = [
        gradcheck.check(params, x, hyper, penalty, term, args.eps)
        for penalty in penalties
        for term in terms
    ]
    sanity = gradcheck.ufldl_sanity_check()
    sanity["passed"] = args.dtype != "float64" or sanity["difference"] < 1e-9
    passed = sanity["passed"] and all(r["passed"] for r in results)
    if args.json:
        print(json.dumps({"sanity": sanity, "checks": results, "passed": passed}, indent=2))
    else:
        print(
            f"network {args.n_visible}-{args.n_hidden}-{args.n_visible}, m={args.m}, "
            f"rho={args.rho}, beta={args.beta}, lam={args.lam}, {args.dtype}, seed={args.seed}"
        )
        print(
            f"UFLDL sanity check of numerical_grad, h(x) = x1^2 + 3 x1 x2 at x = {sanity['x']}: "
            f"relative difference {sanity['difference']:.2e}\n"
        )
        for r in results:
            print(gradcheck.format_table(r) + "\n")
        print("all checks passed" if passed else "SOME CHECKS FAILED")
    return 0 if passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saejax", description="The CS294A/UFLDL sparse autoencoder in JAX."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_gradcheck(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad input: one clear line, no traceback
        print(f"saejax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
