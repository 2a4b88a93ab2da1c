"""make mutants: mutmut on the math modules, then the score of each module and its survivors.

    python tests/mutants.py run [MODULE ...]     mutmut on these modules (default: every one in
                                                 pyproject's [tool.mutmut] only_mutate)
    python tests/mutants.py run --sample N [--seed S] [MODULE ...]
                                                 N mutants of each module, drawn at random (seed
                                                 S, default 0: another seed draws other mutants)
    python tests/mutants.py changed [REV]        the modules that differ from REV (default main)
    python tests/mutants.py report               the table below, from mutmut's results

mutmut keeps its results in mutants/. A run of every module re-tests only the mutants of the
functions that changed since, and (this script sees to it) every mutant not yet killed; a run of
named modules, or of a sample, re-tests all the mutants it names. The report counts, per module, mutants killed (a test failed, or the
mutant timed out), mutants that survived, and survivors listed in tests/equivalent_mutants.md
with the reason no input can tell them apart. The score is killed / (all - equivalent); a
survivor that is neither killed nor listed is a test to write. Exit status 1 when a module
scores below the goal, has mutants not run or a survivor not listed, and when the list names a
mutant that a test kills or that is gone (a stale entry). Docs: docs/mutants.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT = REPO / "tests" / "equivalent_mutants.md"
GOAL = 0.90
# mutmut's statuses (mutmut.stats.status_by_exit_code) that count as killed: a test failed, the
# tests ran past their time or crashed. "survived", "no tests" and "suspicious" are not killed.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
NOT_RUN = {"not checked", "check was interrupted by user"}


def modules() -> list[str]:
    """The files mutmut mutates, as pyproject.toml lists them."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def pattern(path: str) -> str:
    """mutmut's name glob for the mutants of one file: saejax/optim/lbfgs.py -> saejax.optim.lbfgs.*"""
    return path.removesuffix(".py").replace("/", ".") + ".*"


def recheck(paths: list[str]) -> None:
    """Forget the verdicts of these files' mutants that were not killed, so that mutmut runs
    them again: a test written since may kill them (killed mutants stay killed)."""
    from mutmut.stats import status_by_exit_code

    for path in paths:
        meta = REPO / "mutants" / (path + ".meta")
        if meta.exists():
            data = json.loads(meta.read_text())
            codes = data["exit_code_by_key"]
            for name, code in codes.items():
                if status_by_exit_code[code] not in KILLED:
                    codes[name] = None
            meta.write_text(json.dumps(data, indent=4))


def sample(paths: list[str], size: int, seed: int = 0) -> list[str]:
    """``size`` mutants of each file, drawn without replacement (seeded), from mutmut's list of
    them (a run must have generated it: mutants/ holds it after the first)."""
    import random

    names = []
    for path, codes in results().items():
        if path in paths:
            every = sorted(codes)
            names += random.Random(f"{seed}:{path}").sample(every, min(size, len(every)))
    return names


def run(paths: list[str], size: int | None = None, seed: int = 0) -> int:
    unknown = sorted(set(paths) - set(modules()))
    if unknown:
        print(f"not a mutated module: {unknown}; choose from {modules()}", file=sys.stderr)
        return 2
    if not paths and not size:
        # every module: mutmut skips the mutants it has decided, unless their function changed;
        # the ones not killed are run again (a test written since may kill them)
        recheck(modules())
        names = []
    else:
        # mutmut runs every mutant it is named, decided or not
        paths = paths or modules()
        names = sample(paths, size, seed) if size else [pattern(p) for p in paths]
        if not names:
            print("no mutants listed yet: run without --sample first", file=sys.stderr)
            return 2
    return subprocess.call([sys.executable, "-m", "mutmut", "run", "--max-children", "2",
                            *names], cwd=REPO)


def changed(rev: str) -> list[str]:
    out = subprocess.run(["git", "diff", "--name-only", rev, "--"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.split()
    return [p for p in modules() if p in out]


def equivalent() -> dict[str, str]:
    """tests/equivalent_mutants.md's rows: mutant name -> the reason it is equivalent."""
    rows = {}
    for line in EQUIVALENT.read_text().splitlines():
        m = re.match(r"\|\s*`([\w.]+__mutmut_\d+)`\s*\|(.+)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def results() -> dict[str, dict[str, int | None]]:
    """Per mutated file, each mutant's exit code (None: not run yet), from mutants/*.meta."""
    out = {}
    for path in modules():
        meta = REPO / "mutants" / (path + ".meta")
        out[path] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    return out


def report() -> int:
    from mutmut.stats import status_by_exit_code

    listed, failing, status_of = equivalent(), False, {}
    print("| module | mutants | killed | survived | of them no test | equivalent | not run "
          "| score |")
    print("|---|---|---|---|---|---|---|---|")
    survivors_unlisted = []
    for path, codes in results().items():
        kind = Counter()
        for name, code in codes.items():
            status = status_by_exit_code[code]
            status_of[name] = status
            if status in NOT_RUN:
                kind["not run"] += 1
            elif status in KILLED:
                kind["killed"] += 1
            elif name in listed:
                kind["equivalent"] += 1
            else:
                kind["survived"] += 1
                kind["no test"] += status == "no tests"
                survivors_unlisted.append((name, status))
        # a module run in part (--sample) is scored on the mutants run, and fails the report
        # until every mutant has run
        scored = len(codes) - kind["equivalent"] - kind["not run"]
        score = kind["killed"] / scored if scored else float("nan")
        failing |= not codes or not score >= GOAL or kind["not run"] > 0
        print(f"| {path} | {len(codes)} | {kind['killed']} | {kind['survived']} | "
              f"{kind['no test']} | {kind['equivalent']} | {kind['not run']} | {score:.1%} |")
    # a listed mutant that a test now kills, or that no longer exists (its function changed)
    stale = sorted(name for name in listed
                   if name not in status_of or status_of[name] in KILLED)
    for name, status in survivors_unlisted:
        print(f"{status}, not listed: {name}  (mutmut show {name})")
    for name in stale:
        print(f"listed in {EQUIVALENT.name} but killed or gone now: {name}")
    return 1 if failing or survivors_unlisted or stale else 0


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("report", [])
    if command == "run":
        size, seed = None, 0
        if args[:1] == ["--sample"]:
            size, args = int(args[1]), args[2:]
        if args[:1] == ["--seed"]:
            seed, args = int(args[1]), args[2:]
        return run(args, size, seed)
    if command == "changed":
        paths = changed(args[0] if args else "main")
        if not paths:
            print("no mutated module differs; nothing to run")
            return 0
        return run(paths)
    if command == "report":
        return report()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
