"""Run directories: whether a run or a sweep may write to one, and writing it atomically.

One directory holds one training run (``saejax train``: config.json, metrics.jsonl,
checkpoints/, summary.json and figures) or one sweep (``saejax sweep``: config.json,
results.csv, results.json, members/ and figures). Before anything is written:

    claim(workdir, kind, resume)   a new run needs a new or empty directory (hidden files
                                   aside: a run's files would overwrite others of their
                                   names); a resumed one needs a
                                   directory of its own kind. Otherwise
                                   RunDirError (exit status 2 on the command line), and the
                                   directory is left untouched. The process that claims it
                                   holds its lock (hold / release) until the run ends.
    fresh(name)                    the default directory, runs/<name>-<time>, always a new one

Files in it are written whole or not at all, with the umask's mode (``records.files``).

config.json records the run's settings and its ``segments``: one entry per start or resume,
with the step it started from and the settings a resume may change, so that a run resumed with
another learning rate or budget says which steps ran with which.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

KINDS = ("run", "sweep")
# Files that only a run or a sweep writes: a directory holding any of them is taken.
MARKERS = ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "results.csv",
           "results.json", "members", "running")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked; the message says what to do instead."""


def kind_of(workdir: str | Path) -> str | None:
    """"run" or "sweep" when ``workdir`` holds one, "unknown" for a partial one, else None."""
    workdir = Path(workdir)
    present = [m for m in MARKERS if (workdir / m).exists()]
    if not present:
        return None
    try:
        kind = json.loads((workdir / "config.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind in KINDS:
        return kind
    if "checkpoints" in present or "metrics.jsonl" in present:
        return "run"
    if "results.csv" in present or "members" in present or "running" in present:
        return "sweep"
    return "unknown"


def _name(kind: str) -> str:
    return {"run": "training run", "sweep": "sweep"}.get(kind, "run of saejax")


def claim(workdir: str | Path, kind: str, resume: bool, create: bool = True,
          resumable: bool = True) -> Path:
    """Checks that ``workdir`` may hold a new (or resumed) ``kind``; unless ``create`` is False
    (a check only, before anything else can fail), creates it and takes its lock (``hold``),
    then checks again under the lock: of two processes started on one directory at the same
    moment, one trains and the other is refused. A refusal suggests resume=True only where the
    caller can resume (``resumable``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    workdir = Path(workdir)
    _check(workdir, kind, resume, resumable)
    if create:
        workdir.mkdir(parents=True, exist_ok=True)
        hold(workdir)
        try:
            _check(workdir, kind, resume, resumable)
        except RunDirError:
            release(workdir)
            raise
    return workdir


def _check(workdir: Path, kind: str, resume: bool, resumable: bool = True) -> None:
    found = kind_of(workdir)
    if resume:
        if found is None:
            raise RunDirError(f"cannot resume: {workdir} holds no {_name(kind)} (no config.json)."
                              " Start a new one without resume=True.")
        if found != kind:
            raise RunDirError(f"cannot resume: {workdir} holds a {_name(found)}, not a "
                              f"{_name(kind)}.")
        return
    if found is not None:
        advice = "Pass resume=True to continue it, or choose" if resumable else "Choose"
        raise RunDirError(f"{workdir} already holds a {_name(found)}; nothing was changed. "
                          f"{advice} another workdir=.")
    if workdir.exists() and not workdir.is_dir():
        raise RunDirError(f"{workdir} is a file, not a directory: choose another workdir=.")
    # a run writes figures and folders of its own names (none hidden but the lock): it would
    # overwrite theirs; hidden files (.DS_Store, .gitkeep) are left alone
    others = (sorted(p.name for p in workdir.iterdir() if not p.name.startswith("."))
              if workdir.exists() else [])
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise RunDirError(f"{workdir} is not empty (it holds {shown}), and a new {_name(kind)} "
                          "writes its files there; nothing was changed. Choose a new or empty "
                          "workdir=.")


LOCK = ".saejax.lock"
_held: dict[Path, int] = {}


def hold(workdir: str | Path) -> None:
    """Takes ``workdir``'s lock for this process: an ``flock`` on ``workdir/.saejax.lock``,
    which the system drops when the process ends, however it ends (a killed run leaves no stale
    lock). A process holding it already keeps it; ``RunDirError`` when another one does."""
    import fcntl

    path = Path(workdir).resolve()
    if path in _held:
        return
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise RunDirError(f"cannot lock {workdir}: {err.strerror or err}. Choose a directory "
                          "you can write to.") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        raise RunDirError(f"{workdir} is in use by another saejax process (it holds {LOCK}); "
                          "nothing was changed. Wait for it to finish, or choose another "
                          "workdir=.") from err
    _held[path] = fd


def release(workdir: str | Path | None) -> None:
    """Lets go of ``workdir``'s lock, if this process holds it."""
    fd = _held.pop(Path(workdir).resolve(), None) if workdir is not None else None
    if fd is not None:
        os.close(fd)


def fresh(name: str, root: str | Path = "runs") -> Path:
    """``root/<name>-<YYYYmmdd-HHMMSS>``, with a counter added when that directory exists."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def segment(start_step: int, settings: dict) -> dict:
    """One entry of config.json's ``segments``: where a start or resume began, how, and on
    what (``environment``)."""
    return {"start_step": int(start_step), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **settings, "environment": environment()}


PACKAGES = ("saejax", "jax", "jaxlib", "optax", "flax", "orbax-checkpoint", "numpy")


def environment() -> dict:
    """What a run ran on: the versions of Python and of ``PACKAGES`` (None when one is not
    installed), the git commit of saejax's source when it is a git checkout (with
    ``git_dirty``: tracked files changed since), and JAX's devices and processes."""
    import platform
    import subprocess
    from importlib import metadata

    import jax

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    source = Path(__file__).resolve().parents[2]
    commit, dirty = None, None

    def git(*args):
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                              timeout=10)

    try:  # only saejax's own checkout: an installed copy may sit inside another repository
        top = git("rev-parse", "--show-toplevel")
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == source:
            commit = git("rev-parse", "HEAD").stdout.strip() or None
            dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    devices = jax.devices()
    return {"versions": versions, "platform": platform.platform(), "git_commit": commit,
            "git_dirty": dirty,
            "devices": {"platform": devices[0].platform, "kind": devices[0].device_kind,
                        "count": len(devices), "processes": jax.process_count()}}


def choose(workdir: str | Path | None, resume: bool, name: str, kind: str,
           check: bool = True, resumable: bool = True) -> Path:
    """The directory a command's ``--workdir``/``--resume`` ask for: ``workdir``, or a fresh
    ``runs/<name>-<time>``; checked with ``claim`` (nothing created) unless ``check`` is False,
    so a taken directory is refused before any data loads."""
    if resume and not workdir:
        raise RunDirError("resume=True needs workdir=, the directory to continue.")
    path = Path(workdir) if workdir else fresh(name)
    return claim(path, kind, resume, create=False, resumable=resumable) if check else path
