"""``saejax synth``: the command line of ``data.synthetic``, one flag per ``SynthConfig`` field."""

from __future__ import annotations

import dataclasses

from saejax.flags import checked, command


def add_synth(sub) -> None:
    from saejax.data.synthetic import MAGNITUDES, SynthConfig

    p = command(sub, "synth", synth,
                "write synthetic data with a known dictionary (sparse features in "
                "superposition)")
    p.add_argument("out", help="output directory (must not hold a synthetic set)")
    for f in dataclasses.fields(SynthConfig):
        kind = type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=checked(kind, None, f.name),
                       default=f.default, help=f.metadata["help"],
                       choices=MAGNITUDES if f.name == "magnitude" else None,
                       metavar=None if f.name == "magnitude" else {int: "N", float: "X"}[kind])


def synth(args) -> int:
    """Write a synthetic set to OUT: x.npy (the training examples x = c D + noise, M x d),
    heldout_x.npy and heldout_codes.npy (held-out examples and their true sparse codes c),
    dictionary.npy (D, F unit rows of d dimensions), probabilities.npy (each feature's firing
    probability, Zipf-ordered), parents.npy (-1 for a root) and synth.json (the settings, each
    file's sha256 and measured facts). The same settings give the same bytes."""
    from saejax.data import synthetic
    from saejax.records import files

    config = synthetic.SynthConfig(**{f.name: getattr(args, f.name)
                                      for f in dataclasses.fields(synthetic.SynthConfig)})
    out = synthetic.write(args.out, config)
    facts = files.read_json(out / synthetic.RECORD)["facts"]
    x_file = out / synthetic.X_FILE
    print(f"wrote {out}: {x_file.name} {config.num_examples} x {config.n_dims}, held-out "
          f"{config.num_heldout} examples with their codes ({config.n_features} true features), "
          f"dictionary {config.n_features} x {config.n_dims}; held-out mean L0 "
          f"{facts['heldout_mean_l0']:.3f} (expected {config.mean_l0:g})")
    print(f"train on it: saejax train --data {x_file} --arch topk --k "
          f"{max(1, round(config.mean_l0))} --n-hidden {config.n_features} --lam 0")
    return 0
