"""Whether a finished run or sweep is a result: the rules, each defined once.

A run can end without error and still be no result. ``run_problems`` names what went wrong,
with the likely cause and the setting to change:

    every hidden unit dead     dead_fraction == 1: no unit carries information
    J above where it began     the final J exceeds J at the initial params, both on all the
                               data: the optimizer diverged without overflowing

``sweep_problems`` names the members that diverged (J not finite) or ended with every unit
dead. Runs and sweeps record ``"healthy"`` and ``"problems"`` in summary.json (a sweep in
config.json's ``summary``) and log each problem as a warning; the exit status stays 0, since
the run finished (3 is for a divergence that stopped it).
"""

from __future__ import annotations

import logging

from saejax.schema import KNOBS

logger = logging.getLogger(__name__)


def _knob(config, rows: list | None = None) -> str:
    """The settings most likely to have driven a run off: the step size, or (L-BFGS, which
    chooses its own) the weights of the penalties: the architecture's penalty weight (its last
    sparsity knob, schema.KNOBS) and lam. For a sweep, the values its flagged ``rows`` had."""
    names = (KNOBS[config.arch][-1], "lam") if config.optimizer == "lbfgs" else ("lr",)
    shown = []
    for name in names:
        label = "the learning rate" if name == "lr" else name
        if rows is None:
            shown.append(f"{label} (now {getattr(config, name):g})")
            continue
        values = sorted({float(r[name]) for r in rows})
        listed = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
        shown.append(f"{label} ({listed} in those members)")
    return "Lower " + " or ".join(shown)


def run_problems(summary: dict, config) -> list[str]:
    """The reasons a finished run is not a result; empty when it is one. ``summary`` holds
    the final statistics and ``initial_loss``, J at the initial params on the same data."""
    problems = []
    if summary.get("dead_fraction") == 1.0:
        problems.append(f"every hidden unit is dead at the end (dead_fraction 1.0): the codes "
                        f"carry no information, likely from too large a step or penalty. "
                        f"{_knob(config)}, and start a new run.")
    final, initial = summary.get("final_loss"), summary.get("initial_loss")
    if final is not None and initial is not None and final > initial:
        problems.append(f"J ended above where it began ({final:.6g} > {initial:.6g}): the "
                        f"optimizer moved away from the minimum. {_knob(config)}, and start a "
                        "new run.")
    return problems


def sweep_problems(rows: list, config) -> list[str]:
    """The reasons some of a sweep's members are not results: members that diverged, and
    members that ended with every unit dead, by their rows in results.csv."""
    problems = []
    diverged = [i for i, r in enumerate(rows) if r.get("diverged")]
    dead = [i for i, r in enumerate(rows)
            if not r.get("diverged") and r.get("dead_fraction") == 1.0]
    if diverged:
        problems.append(f"{len(diverged)} of {len(rows)} members diverged (J NaN or Inf; rows "
                        f"{_rows(diverged)} of results.csv): their settings are too aggressive. "
                        f"{_knob(config, [rows[i] for i in diverged])}, or leave out the "
                        "largest values of the grid.")
    if dead:
        problems.append(f"{len(dead)} of {len(rows)} members ended with every hidden unit dead "
                        f"(rows {_rows(dead)} of results.csv): their codes carry no information. "
                        f"{_knob(config, [rows[i] for i in dead])}"
                        + ("." if config.optimizer == "lbfgs" else ", or lower their penalty's "
                           "weight."))
    return problems


def _rows(indices: list) -> str:
    shown = ", ".join(str(i) for i in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


def record(summary: dict, problems: list[str]) -> dict:
    """``summary`` with ``healthy`` and ``problems``; each problem logged as a warning."""
    for problem in problems:
        logger.warning(problem)
    return {**summary, "healthy": not problems, "problems": problems}
