"""One grammar for the command line: every flag's --help shows its default, lists take spaces
or commas, a model is positional, --tied is spelled alike everywhere, an error prints the
command's one-line usage, and errors from Python name Python arguments while the command line
names flags (one mapping, tested both ways)."""

import argparse
import json

import pytest

from saejax import cli, flags
from saejax.records import rundir


def commands():
    parser = cli.build_parser()
    return parser, parser.commands


@pytest.mark.parametrize("name", ["train", "sweep", "gradcheck", "export", "encode", "synth"])
def test_every_flag_of_every_command_shows_its_default(name):
    _, parsers = commands()
    p = parsers[name]
    formatter = p._get_formatter()
    missing = [a.option_strings[0] for a in p._actions
               if a.option_strings and a.dest != "help" and not a.required
               and "default" not in formatter._get_help_string(a) % vars(a)]
    assert not missing, missing


def test_lists_take_spaces_or_commas():
    parser, _ = commands()
    for argv in (["--rho", "0.01", "0.1", "0.2"], ["--rho", "0.01,0.1,0.2"],
                 ["--rho", "0.01,0.1", "0.2"]):
        args = parser.parse_args(["sweep", *argv, "--beta", "3"])
        assert args.rho == [0.01, 0.1, 0.2], argv
    assert parser.parse_args(["sweep", "--arch", "topk", "--k", "8,16"]).k == [8, 16]


def test_a_bad_value_prints_the_command_s_one_line_usage(capsys):
    assert cli.main(["sweep", "--rho", "0.01,abc", "--beta", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "usage: saejax sweep [flags]"
    assert err[1] == "saejax sweep: error: argument --rho: rho must be a float, got 'abc'"
    assert len(err) == 3 and "--help" in err[2]


def test_a_misspelled_flag_is_reported_by_its_command(capsys):
    assert cli.main(["train", "--rhoo", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: saejax train [flags]\n")
    assert "unrecognized arguments: --rhoo 0.1" in err


def test_tied_is_a_switch_in_every_command():
    parser, _ = commands()
    assert parser.parse_args(["train", "--tied"]).tied is True
    assert parser.parse_args(["train", "--no-tied"]).tied is False
    assert parser.parse_args(["gradcheck"]).tied == "no"
    assert parser.parse_args(["gradcheck", "--tied"]).tied == "yes"
    assert parser.parse_args(["gradcheck", "--no-tied"]).tied == "no"
    assert parser.parse_args(["gradcheck", "--tied", "all"]).tied == "all"


def test_the_model_is_positional_with_the_old_flag_kept(capsys, tmp_path):
    parser, _ = commands()
    assert parser.parse_args(["encode", "RUN", "--out", "f.npy"]).model == "RUN"
    assert parser.parse_args(["encode", "--model", "RUN", "--out", "f.npy"]).model_flag == "RUN"
    assert parser.parse_args(["export", "RUN", "OUT"]).source == "RUN"
    out = str(tmp_path / "f.npy")
    assert cli.main(["encode", "--out", out]) == 2
    assert "give the model once: saejax encode MODEL" in capsys.readouterr().err
    assert cli.main(["encode", "A", "--model", "B", "--out", out]) == 2
    assert "give the model once" in capsys.readouterr().err


def test_errors_name_python_arguments_in_python_and_flags_on_the_command_line(tmp_path,
                                                                             capsys):
    taken = tmp_path / "run"
    taken.mkdir()
    (taken / "config.json").write_text(json.dumps({"kind": "run"}))
    with pytest.raises(rundir.RunDirError) as python:
        rundir.claim(taken, "run", resume=False)
    assert "resume=True" in str(python.value) and "workdir=" in str(python.value)
    assert "--" not in str(python.value)
    assert cli.main(["train", "--workdir", str(taken), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Pass --resume to continue it, or choose another --workdir." in err
    assert "=" not in err
    # the member of a sweep, both ways
    assert flags.to_flags("give member=, 0 to 8") == "give --member, 0 to 8"
    assert flags.to_flags("member=12 is outside") == "--member 12 is outside"
    # a path that happens to hold "steps=" is a path, not an argument
    assert flags.to_flags("runs/steps=400 is taken") == "runs/steps=400 is taken"


def test_every_mapped_argument_is_a_flag_some_command_takes():
    _, parsers = commands()
    taken = {s for p in parsers.values() for a in p._actions for s in a.option_strings}
    for python, flag in flags.FLAG_OF.items():
        assert flag in taken, (python, flag)
    assert isinstance(parsers["train"], argparse.ArgumentParser)


def test_saejax_alone_lists_its_commands_and_version_prints_the_installed_ones(capsys):
    from importlib.metadata import version

    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "usage: saejax COMMAND [flags]" in err
    assert "commands: " + ", ".join(commands()[1]) in err
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == (f"saejax {version('saejax')} (jax {version('jax')}, "
                                       f"jaxlib {version('jaxlib')})\n")


@pytest.mark.slow
def test_python_dash_m_saejax_is_the_command():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "saejax", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("saejax ") and "(jax " in out
    bare = subprocess.run([sys.executable, "-m", "saejax"], capture_output=True, text=True)
    assert bare.returncode == 2 and "usage: saejax COMMAND [flags]" in bare.stderr
