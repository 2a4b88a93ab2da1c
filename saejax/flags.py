"""The command line's grammar, defined once: flags made from ``TrainConfig``'s own fields (one
per setting, with its help text, default, rule and choices, so the flags can never drift from
the config; ``saejax train`` and ``saejax sweep`` share them, and a sweep's axes take lists,
space- or comma-separated), the parser every command uses (its --help shows each flag's
default; an error prints the command's one-line usage), and the one mapping from the Python
arguments that errors name to the flags the command line shows (``to_flags``).
"""

from __future__ import annotations

import argparse
import re


def checked(kind, rule: str | None, name: str):
    """An argparse type: ``kind``, then the config's rule for ``name`` (a clear exit-2 error)."""
    from saejax.config import check_value

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            article = "an" if kind.__name__[0] in "aeiou" else "a"
            raise argparse.ArgumentTypeError(
                f"{name} must be {article} {kind.__name__}, got {text!r}") from None
        if rule is not None:
            try:
                check_value(name, value, rule)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None
        return value

    parse.__name__ = kind.__name__
    return parse


def int_or_auto(text: str):
    """A count, or "auto" (the config chooses it); the config's rule then checks it."""
    from saejax.config import AUTO

    return AUTO if text == AUTO else int(text)


int_or_auto.__name__ = "int or auto"


def add_train_options(p, swept=(), without=()) -> None:
    """One flag per TrainConfig field but ``dataset`` and ``without`` (settings the command
    does not take), its comment as the help; ``swept`` ones take lists. Shared by `saejax
    train` and `saejax sweep`."""
    import dataclasses

    from saejax.config import PRESETS, TrainConfig

    assert PRESETS["ufldl-patches"] == TrainConfig()  # the defaults shown in --help
    p.add_argument("--preset", choices=sorted(PRESETS), default="ufldl-patches",
                   help="starting settings (default ufldl-patches: the UFLDL exercise)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "dataset" or f.name in without:  # the preset picks the data set
            continue
        flag, meta, default = "--" + f.name.replace("_", "-"), f.metadata, f.default
        help_ = meta["help"] if "(default: " in meta["help"] else (
            f"{meta['help']} (default: {'none' if default is None else default})")
        if f.name == "tied":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
            continue
        kind = {"batch_size": int_or_auto, "data": str}.get(f.name, type(default))
        rule = None if f.name in swept else meta["rule"]  # a sweep checks its grid itself
        kw = {"type": checked(kind, rule, f.name), "choices": meta["choices"], "help": help_,
              "metavar": {int: "N", int_or_auto: "N", float: "X", str: "PATH"}[kind]
              if not meta["choices"] else None}
        if f.name in swept:
            kw.update(nargs="+", action=Values, type=values_of(kind, f.name),
                      help=help_ + "; the values to sweep, separated by spaces or commas")
        p.add_argument(flag, **kw)
    p.epilog = ("Defaults shown are the ufldl-patches preset's; the other presets change some "
                "(see the preset table in docs/cli.md).")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def config_from_args(args, swept=(), base=None):
    """The preset's TrainConfig (or ``base``) with every given flag applied (but swept ones)."""
    from saejax.config import AUTO, OWNERS, PRESETS, TrainConfig, check_own_knobs, check_preset

    fields = TrainConfig.__dataclass_fields__
    overrides = {
        k: v for k, v in vars(args).items()
        if k in fields and v is not None and k != "dataset" and k not in swept
    }
    given = [k for k in OWNERS if k in overrides]
    start = base or PRESETS[args.preset]
    if base is not None:  # a flag repeating the saved value changes nothing
        overrides = {k: v for k, v in overrides.items() if getattr(base, k) != v}
    if overrides.get("arch") == start.arch:  # nor does an --arch repeating the preset's or the
        del overrides["arch"]  # run's: it must not reset the decoder and optimizer they chose
    if "arch" not in overrides:  # auto keeps the preset's (or the saved run's) own choice
        overrides = {k: v for k, v in overrides.items()
                     if not (k in ("decoder", "optimizer") and v == AUTO)}
    config = start.replace(**overrides)
    check_preset(args.preset, config)
    check_own_knobs(config.arch, given, saved=base is not None)
    return config


def fit_to_data(config, x, args):
    """The config fitted to the examples ``x`` it trains on and checked against them, before a
    word of training is printed: a batch size the user left to auto (or to the preset) that
    exceeds the rows becomes all of them, with a note (a resumed run, on the same rows, gets its
    saved size back). A batch size given is left as it is, and refused where it exceeds the rows;
    so is data outside [0, 1] for the sigmoid decoder (``checks.check_training_data``; a stream's
    rows are checked as the run reads them)."""
    import numpy as np

    from saejax.checks import check_training_data
    from saejax.config import AUTO

    rows = x.shape[0]
    if (config.batch_size is not None and config.batch_size > rows
            and args.batch_size in (None, AUTO)):
        print(f"batch size {rows}: auto's {config.batch_size} exceeds the {rows} examples, so "
              "each step takes all of them (--batch-size N picks another)")
        config = config.replace(batch_size=rows)
    if isinstance(x, np.ndarray):
        check_training_data(x, config)
    return config


def versions() -> str:
    """``saejax X (jax Y, jaxlib Z)``, from the installed packages' metadata (JAX not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name):
        try:
            return version(name)
        except PackageNotFoundError:  # a source tree never installed
            return "not installed"

    return f"saejax {of('saejax')} (jax {of('jax')}, jaxlib {of('jaxlib')})"


def values_of(kind, name: str):
    """An argparse type for a list's token: one value, or several separated by commas."""
    one = checked(kind, None, name)

    def parse(text: str):
        return [one(part) for part in text.split(",") if part.strip()]

    parse.__name__ = kind.__name__
    return parse


class Values(argparse.Action):
    """``nargs="+"`` of ``values_of`` tokens, flattened: ``--rho 0.01 0.1`` and
    ``--rho 0.01,0.1`` give the same list."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [v for token in values for v in token])


class Formatter(argparse.HelpFormatter):
    """--help with every flag's default: the help text's own, else "(default: X)", and
    "(default: off)" for a switch."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if "default" in help_ or not action.option_strings or action.dest == "help":
            return help_
        if action.nargs == 0:  # a switch
            return help_ + " (default: off)"
        if action.default is not None and action.default is not argparse.SUPPRESS:
            shown = (" ".join(map(str, action.default)) if isinstance(action.default, list)
                     else action.default)
            return help_ + f" (default: {shown})"
        return help_


class Parser(argparse.ArgumentParser):
    """argparse with ``Formatter``, whose errors print the command's one-line usage and the
    error, and how to see every flag, instead of the whole usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        commands = getattr(self, "commands", None)
        if commands:  # saejax itself, without a command or with a wrong one: list them
            self.exit(2, f"usage: {self.prog} COMMAND [flags]\n{self.prog}: error: {message}\n"
                         f"commands: {', '.join(commands)}\n(`{self.prog} COMMAND --help` "
                         "lists a command's flags)\n")
        usage = self.format_usage()
        if usage.count("\n") > 1:  # a long usage block: name the command only
            usage = f"usage: {self.prog} [flags]\n"
        self.exit(2, f"{usage}{self.prog}: error: {message}\n"
                     f"(`{self.prog} --help` lists every flag with its default)\n")


def command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """The subcommand ``name``: ``help`` in the command list, ``func``'s docstring as its
    description, ``func(args)`` what it runs."""
    p = sub.add_parser(name, help=help, description=" ".join(func.__doc__.split()))
    p.set_defaults(func=func)
    return p


# The Python arguments that errors raised from Python name, and the flags the command line
# shows in their place (``to_flags``): a message says "pass resume=True" or "another workdir="
# to a Python caller, and "pass --resume" or "another --workdir" on the command line;
# "member=3" becomes "--member 3".
FLAG_OF = {"resume": "--resume", "workdir": "--workdir", "member": "--member",
           "steps": "--steps"}
# (an argument stands alone: "runs/steps=400", a path, is left as it is)
_ARGUMENT = re.compile(r"(?<![\w/.=-])(" + "|".join(FLAG_OF) + r")=(True\b|[^\s,;)]*[^\s,;).])?")


def to_flags(message: str) -> str:
    """An error message from Python, its arguments named as the command line's flags."""
    def flag(match):
        value = match.group(2)
        return FLAG_OF[match.group(1)] + ("" if value in (None, "True") else f" {value}")

    return _ARGUMENT.sub(flag, message)
