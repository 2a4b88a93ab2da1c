"""Command-line flags made from ``TrainConfig``'s own fields: one flag per setting, with the
setting's help text, default, rule and choices, so the flags can never drift from the config.
``saejax train`` and ``saejax sweep`` share them (a sweep's axes take lists)."""

from __future__ import annotations

import argparse


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


def add_train_options(p, swept=()) -> None:
    """One flag per TrainConfig field but ``dataset``, its comment as the help; ``swept`` ones
    take lists. Shared by `saejax train` and `saejax sweep`."""
    import dataclasses

    from saejax.config import PRESETS, TrainConfig

    assert PRESETS["ufldl-patches"] == TrainConfig()  # the defaults shown in --help
    p.add_argument("--preset", choices=sorted(PRESETS), default="ufldl-patches",
                   help="starting settings (default ufldl-patches: the UFLDL exercise)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "dataset":  # the preset picks the data set
            continue
        flag, meta, default = "--" + f.name.replace("_", "-"), f.metadata, f.default
        help_ = meta["help"] if default is None else f"{meta['help']} (default: {default})"
        if f.name == "tied":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
            continue
        kind = {"batch_size": int, "data": str}.get(f.name, type(default))
        rule = None if f.name in swept else meta["rule"]  # a sweep checks its grid itself
        kw = {"type": checked(kind, rule, f.name), "choices": meta["choices"], "help": help_,
              "metavar": {int: "N", float: "X", str: "PATH"}[kind] if not meta["choices"] else None}
        if f.name in swept:
            kw.update(nargs="+", help=help_ + "; space-separated values to sweep")
        p.add_argument(flag, **kw)
    p.epilog = ("Defaults shown are the ufldl-patches preset's; the other presets change some "
                "(see the README's preset table).")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def config_from_args(args, swept=(), base=None):
    """The preset's TrainConfig (or ``base``) with every given flag applied (but swept ones)."""
    from saejax.config import PRESETS, TrainConfig, check_preset

    fields = TrainConfig.__dataclass_fields__
    overrides = {
        k: v for k, v in vars(args).items()
        if k in fields and v is not None and k != "dataset" and k not in swept
    }
    config = (base or PRESETS[args.preset]).replace(**overrides)
    check_preset(args.preset, config)
    return config
