"""flags: one flag per TrainConfig setting, with its help and rule, and the flags reach the config.
"""

import argparse
import dataclasses

import pytest

from saejax import cli, flags
from saejax.config import TrainConfig
from saejax.schema import PENALTIES


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_every_field_but_dataset_is_a_flag_with_its_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "dataset" or (command, f.name) == ("sweep", "log_every"):
            assert flag not in text  # the preset picks the data; a sweep logs no curves
            continue
        assert flag in text, flag
        assert " ".join(f.metadata["help"].split()) in text, f.name


def test_flags_reach_the_config():
    args = cli.build_parser().parse_args(
        ["train", "--preset", "digits", "--lbfgs-memory", "7", "--tied", "--rho", "0.2",
         "--optimizer", "momentum", "--momentum", "0.5"])
    config = cli.config_from_args(args)
    assert (config.dataset, config.lbfgs_memory, config.tied, config.rho) == ("digits", 7, True, 0.2)
    assert (config.optimizer, config.momentum, config.batch_size) == ("momentum", 0.5, 256)


def test_auto_keeps_the_presets_own_choice_and_a_new_architecture_picks_its_own():
    parse = cli.build_parser().parse_args
    config = cli.config_from_args(parse(["train", "--preset", "color-patches", "--decoder",
                                         "auto", "--optimizer", "auto"]))
    assert (config.decoder, config.optimizer) == ("linear", "lbfgs")  # the preset's, not sigmoid
    config = cli.config_from_args(parse(["train", "--preset", "color-patches", "--arch",
                                         "sigmoid", "--decoder", "auto"]))
    assert config.decoder == "linear"  # the preset's own architecture, named: still its choice
    config = cli.config_from_args(parse(["train", "--preset", "ufldl-patches", "--decoder",
                                         "auto"]))
    assert config.decoder == "sigmoid"
    config = cli.config_from_args(parse(["train", "--arch", "topk", "--decoder", "auto"]))
    assert (config.decoder, config.optimizer) == ("linear", "adam")
    saved = TrainConfig(arch="topk", k=4, n_hidden=8, lam=0.0, optimizer="sgd")
    resumed = parse(["train", "--resume", "--workdir", "W", "--optimizer", "auto"])
    assert cli.config_from_args(resumed, base=saved).optimizer == "sgd"  # the run's own


def test_a_resumed_runs_architecture_is_its_own_and_another_knob_is_refused_so():
    # on --resume the architecture comes from config.json and cannot change: the advice is to
    # leave the knob out, not to pass --arch
    saved = TrainConfig(arch="topk", k=4, n_hidden=8, lam=0.0)
    args = cli.build_parser().parse_args(["train", "--resume", "--workdir", "W", "--rho", "0.1"])
    with pytest.raises(ValueError, match=r"rho is not a knob of topk .* The run resumed is topk "
                                         r"\(its config.json says so\): leave --rho out\.$"):
        cli.config_from_args(args, base=saved)
    args = cli.build_parser().parse_args(["train", "--resume", "--workdir", "W", "--k", "4"])
    assert cli.config_from_args(args, base=saved) == saved


@pytest.mark.parametrize("given, adam, lbfgs", [("auto", 256, None), ("32", 32, "refused")])
def test_batch_size_takes_a_count_or_auto_as_its_help_says(given, adam, lbfgs, capsys):
    # --help shows "(default: auto)": typing it must mean what leaving the flag out means
    for optimizer, expected in (("adam", adam), ("lbfgs", lbfgs)):
        args = cli.build_parser().parse_args(
            ["train", "--optimizer", optimizer, "--batch-size", given])
        if expected == "refused":
            with pytest.raises(ValueError, match="batch_size must be None for L-BFGS.* leave "
                                                 "--batch-size out"):
                cli.config_from_args(args)
        else:
            assert cli.config_from_args(args).batch_size == expected


@pytest.mark.parametrize("argv, message", [
    (["train", "--rho", "2"], "rho must lie strictly inside (0, 1)"),
    (["train", "--steps", "0"], "steps must be a positive integer below 2**31"),
    (["train", "--lr", "abc"], "lr must be a float"),
    (["train", "--batch-size", "many"], "batch_size must be an int or auto, got 'many'"),
    (["train", "--batch-size", "0"], "batch_size must be a positive integer or auto (full "
                                     "batch: None), got 0"),
    (["gradcheck", "--eps", "-1"], "eps must be finite and > 0"),
    (["train", "--arch", "topk", "--rho", "0.2"],
     "rho is not a knob of topk (it belongs to sigmoid); topk's knob is k"),
    (["train", "--l1", "0.5", "--k", "4"], "l1, k are not knobs of sigmoid (they belong to "
                                          "batchtopk, relu-l1, topk); sigmoid's knobs are rho "
                                          "and beta"),
    (["train", "--arch", "topk", "--penalty", "squared"],
     "penalty is not a setting of topk (it belongs to sigmoid)"),
    (["train", "--arch", "topk", "--bandwidth", "0.5"],
     "bandwidth is not a setting of topk (it belongs to jumprelu)"),
    (["train", "--arch", "relu-l1", "--aux-k", "8", "--l1", "2"],
     "aux_k is not a setting of relu-l1 (it belongs to batchtopk, topk)"),
    (["sweep", "--devices", "0", "--rho", "0.1", "--beta", "3"],
     "devices must be a positive integer"),
    (["gradcheck", "--m", "0"], "m must be a positive integer"),
    (["features", "R", "--out", "O", "--top", "0"], "top must be a positive integer"),
    (["features", "R", "--out", "O", "--contexts", "-1"], "contexts must be a positive integer"),
    (["evaluate", "R", "--text", "T", "--tokens", "0"], "tokens must be a positive integer"),
    (["evaluate", "R", "--text", "T", "--batch-size", "0"],
     "batch_size must be a positive integer"),
    (["gradcheck", "--lam", "-1"], "lam must be finite and >= 0"),
])
def test_numeric_flags_are_range_checked(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_add_train_options_makes_a_flag_per_setting_but_dataset():
    parser = argparse.ArgumentParser()
    flags.add_train_options(parser, swept=("rho", "beta"))
    made = {a.dest: a for a in parser._actions}
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    assert set(fields) - set(made) == {"dataset"}
    assert set(made) - set(fields) == {"help", "preset", "no_progress"}
    for name in (f for f in fields if f != "dataset"):
        assert made[name].option_strings[0] == "--" + name.replace("_", "-"), name
        assert made[name].default is None, name  # unset flags leave the preset's value
    assert made["tied"].option_strings == ["--tied", "--no-tied"]
    assert made["rho"].nargs == "+" and made["beta"].nargs == "+" and made["lam"].nargs is None
    assert tuple(made["penalty"].choices) == PENALTIES


def test_a_swept_flag_takes_values_its_grid_checks_later():
    swept = argparse.ArgumentParser()
    flags.add_train_options(swept, swept=("rho",))
    args = swept.parse_args(["--rho", "0.1", "2", "--lam", "0.5"])
    assert args.rho == [0.1, 2.0] and args.lam == 0.5
    assert flags.config_from_args(args, swept=("rho",)).rho == TrainConfig().rho  # not applied
    single = argparse.ArgumentParser()
    flags.add_train_options(single)
    with pytest.raises(SystemExit):
        single.parse_args(["--rho", "2"])


def test_checked_parses_then_applies_the_rule():
    parse = flags.checked(int, "positive_int", "n_hidden")
    assert parse("7") == 7 and parse.__name__ == "int"
    with pytest.raises(argparse.ArgumentTypeError, match="n_hidden must be a positive integer"):
        parse("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"n_hidden must be an? int, got '2.5'"):
        parse("2.5")
    assert flags.checked(float, None, "x")("-3") == -3.0  # no rule: any float


def test_every_flag_of_every_command_says_what_it_is():
    # docs/cli.md: `saejax COMMAND --help` lists every flag it accepts, each with its meaning
    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 9
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"saejax {name} {action.option_strings[0]} has no help"
