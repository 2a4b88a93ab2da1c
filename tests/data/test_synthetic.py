"""Synthetic data with a known dictionary: the Zipf probabilities against hand-worked values,
firing frequencies, the copula and the hierarchy against binomial tolerances, magnitudes against
their closed-form means, the examples against codes @ dictionary, the same bytes from the same
seed, and the directory written, refused, checked and read back; ``saejax synth`` exits 0, then
2 when the directory holds a set."""

import dataclasses
import hashlib
import importlib.metadata
import json
import math
import re

import numpy as np
import pytest

from saejax import cli
from saejax.data import DataError, synthetic
from saejax.data.synthetic import SynthConfig

TINY = dict(n_dims=8, n_features=32, num_examples=3_000, num_heldout=2_000, mean_l0=3.0)


def tiny(**changes) -> SynthConfig:
    return SynthConfig(**{**TINY, **changes})


def firing(config: SynthConfig, m: int, seed: int = 1):
    """(fires_MxF, p_F, parent_F): which features fire in m codes from sample_codes."""
    p_F = synthetic.firing_probabilities(config.n_features, config.mean_l0,
                                         config.zipf_exponent)
    parent_F = synthetic.parents_of(np.random.default_rng(seed), config.n_features,
                                    config.hierarchy)
    codes = synthetic.sample_codes(np.random.default_rng(seed + 1), m, p_F, parent_F, config)
    return codes != 0, p_F, parent_F


def within_binomial(frequency, p, m, sigmas=5.0):
    """Each frequency within `sigmas` standard errors of p (plus a floor for p near 0 or 1)."""
    se = np.sqrt(p * (1 - p) / m) + 1.0 / m
    return np.all(np.abs(frequency - p) <= sigmas * se)


def test_the_dictionary_has_unit_rows_of_the_requested_shape():
    D = synthetic.true_dictionary(np.random.default_rng(0), 32, 8)
    assert D.shape == (32, 8) and D.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(D.astype(np.float64), axis=1), 1.0, atol=1e-6)


def test_probabilities_hand_worked():
    # w = 1, 1/2, 1/3, 1/4 sums to 25/12, so c = 12/25 and nothing reaches 1
    np.testing.assert_allclose(synthetic.firing_probabilities(4, 1.0, 1.0),
                               [12 / 25, 6 / 25, 4 / 25, 3 / 25], rtol=1e-12)
    # mean 2.5 of w = 1, 1/2, 1/3: c = 15/11 caps feature 0; the rest share 1.5, c = 1.8
    np.testing.assert_allclose(synthetic.firing_probabilities(3, 2.5, 1.0), [1.0, 0.9, 0.6],
                               rtol=1e-12)
    np.testing.assert_array_equal(synthetic.firing_probabilities(5, 5.0, 2.0), np.ones(5))
    np.testing.assert_allclose(synthetic.firing_probabilities(6, 3.0, 0.0), np.full(6, 0.5))


@pytest.mark.parametrize("n, mean_l0, a", [(32, 3.0, 1.0), (512, 8.0, 1.0), (100, 40.0, 1.5),
                                           (64, 63.5, 0.7), (1000, 1e-3, 2.0)])
def test_probabilities_sum_to_mean_l0_in_zipf_ratio_and_capped_at_one(n, mean_l0, a):
    p = synthetic.firing_probabilities(n, mean_l0, a)
    assert abs(p.sum() - mean_l0) <= 1e-9 * mean_l0
    assert np.all(p > 0) and np.all(p <= 1) and np.all(np.diff(p) <= 0)
    free = np.flatnonzero(p < 1)
    i, j = free[:, None], free[None, :]
    np.testing.assert_allclose(p[i] / p[j], ((j + 1) / (i + 1)) ** a, rtol=1e-10)
    capped = np.flatnonzero(p == 1)
    if len(capped):  # a capped feature would have been at least 1 at the same c
        c = p[free[0]] * (free[0] + 1) ** a
        assert np.all(c * (capped + 1.0) ** -a >= 1)
    if mean_l0 == 40.0:
        assert len(capped) > 0


def test_firing_frequencies_match_the_probabilities():
    config = tiny()
    fires, p_F, _ = firing(config, 20_000)
    assert within_binomial(fires.mean(axis=0), p_F, len(fires))
    assert abs(fires.sum(axis=1).mean() - config.mean_l0) < 5 * math.sqrt(config.mean_l0 / 20_000)


def test_the_copula_makes_groups_fire_together_and_keeps_the_marginals():
    config = tiny(n_features=16, mean_l0=4.0, zipf_exponent=0.5, correlation=0.9, group_size=4)
    m = 20_000
    fires, p_F, _ = firing(config, m)
    assert within_binomial(fires.mean(axis=0), p_F, m)
    r = np.corrcoef(fires.T.astype(np.float64))
    group = np.arange(16) // 4
    same = group[:, None] == group[None, :]
    off = ~np.eye(16, dtype=bool)
    assert r[same & off].min() > 0.2
    assert np.abs(r[~same]).max() < 5 / math.sqrt(m)
    independent, _, _ = firing(dataclasses.replace(config, correlation=0.0), m)
    assert np.abs(np.corrcoef(independent.T.astype(np.float64))[off]).max() < 5 / math.sqrt(m)


def test_a_child_fires_only_with_its_parent_and_keeps_its_marginal():
    config = tiny(hierarchy=0.5)
    m = 20_000
    fires, p_F, parent_F = firing(config, m)
    children = np.flatnonzero(parent_F >= 0)
    assert len(children) == 16 and parent_F[0] == -1
    assert np.all(parent_F[children] < children) and np.all(parent_F[parent_F[children]] == -1)
    assert not np.any(fires[:, children] & ~fires[:, parent_F[children]])
    assert within_binomial(fires.mean(axis=0), p_F, m)


def test_heldout_x_is_the_codes_times_the_dictionary():
    data = synthetic.generate(tiny())
    assert data.heldout_x.shape == (2_000, 8) and data.heldout_codes.shape == (2_000, 32)
    assert data.x.shape == (3_000, 8) and data.x.dtype == np.float32
    expected = data.heldout_codes.astype(np.float64) @ data.dictionary.astype(np.float64)
    np.testing.assert_allclose(data.heldout_x, expected, rtol=1e-6, atol=1e-6)
    noisy = synthetic.generate(tiny(noise_std=0.1))
    residual = noisy.heldout_x - noisy.heldout_codes.astype(np.float64) @ noisy.dictionary
    assert abs(residual.std() - 0.1) < 0.005
    np.testing.assert_array_equal(noisy.heldout_codes, data.heldout_codes)  # codes stay clean


def test_magnitudes():
    constant = synthetic.generate(tiny(magnitude="constant", magnitude_mean=2.5)).heldout_codes
    assert set(np.unique(constant)) == {0.0, 2.5}
    m, s = 0.5, 1.0  # s > m: the fold matters, and a wrong s moves both moments
    folded = synthetic.generate(tiny(magnitude_mean=m, magnitude_std=s)).heldout_codes
    values = folded[folded != 0].astype(np.float64)
    phi = 0.5 * math.erfc((m / s) / math.sqrt(2))  # Phi(-m / s)
    mean = s * math.sqrt(2 / math.pi) * math.exp(-m**2 / (2 * s**2)) + m * (1 - 2 * phi)
    second = m**2 + s**2  # E|N|^2 = E N^2
    fourth = m**4 + 6 * m**2 * s**2 + 3 * s**4
    assert np.all(values > 0)
    assert abs(values.mean() - mean) < 5 * math.sqrt((second - mean**2) / len(values))
    assert abs((values**2).mean() - second) < 5 * math.sqrt((fourth - second**2) / len(values))
    exponential = synthetic.generate(tiny(magnitude="exponential", magnitude_mean=2.0))
    values = exponential.heldout_codes[exponential.heldout_codes != 0]
    assert abs(values.mean() - 2.0) < 5 * 2.0 / math.sqrt(len(values))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs():
    config = tiny(correlation=0.3, hierarchy=0.25, noise_std=0.01, num_examples=25_000)
    a, b = synthetic.generate(config), synthetic.generate(config)
    for name in synthetic.FILES:
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    fewer = synthetic.generate(dataclasses.replace(config, num_examples=10))
    assert fewer.heldout_codes.tobytes() == a.heldout_codes.tobytes()  # its own stream
    c = synthetic.generate(dataclasses.replace(config, seed=1))
    for name in ("x", "heldout_x", "heldout_codes", "dictionary", "parents"):
        assert getattr(a, name).tobytes() != getattr(c, name).tobytes(), name


def test_the_bytes_of_one_small_set_are_frozen():
    # If this fails and you did not mean to change how sets are drawn, it is a bug: a seed no
    # longer gives the set it gave before. If you did, record the new digest and say so.
    data = synthetic.generate(SynthConfig(n_dims=3, n_features=6, num_examples=4,
                                          num_heldout=5, mean_l0=2.0, zipf_exponent=1.0,
                                          hierarchy=0.3, correlation=0.5, group_size=2,
                                          noise_std=0.1, seed=3))
    digest = hashlib.sha256()
    for name in synthetic.FILES:
        digest.update(getattr(data, name).tobytes())
    assert digest.hexdigest() == (
        "c5c165011cae54e4f368237fd6752c4ea3910ddc20be27c5e545114789559b03")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    config = tiny(hierarchy=0.25)
    assert synthetic.write(out, config) == out
    return out, config


def test_write_and_load_round_trip(written):
    out, config = written
    assert synthetic.is_synthetic(out) and not synthetic.is_synthetic(out / "x.npy")
    assert not synthetic.is_synthetic(out.parent)
    record = json.loads((out / synthetic.RECORD).read_text())
    assert record["format"] == "saejax-synthetic" and record["config"] == dataclasses.asdict(config)
    assert set(record["sha256"]) == {f"{name}.npy" for name in synthetic.FILES}
    assert record["saejax_version"] == importlib.metadata.version("saejax")  # installed: -e .
    fresh = synthetic.generate(config)
    loaded = synthetic.load(out)
    assert loaded.config == config and isinstance(loaded.x, np.memmap)
    # x memory-mapped read-only; the small arrays read into memory, the file let go
    assert not loaded.x.flags.writeable
    for name in synthetic.FILES[1:]:
        array = getattr(loaded, name)
        assert not isinstance(array, np.memmap) and array.flags.writeable, name
    for name in synthetic.FILES:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fresh, name))
        assert getattr(loaded, name).dtype == getattr(fresh, name).dtype
    facts = record["facts"]
    fires = fresh.heldout_codes != 0
    assert facts["heldout_mean_l0"] == pytest.approx(fires.sum(axis=1).mean())
    assert facts["heldout_firing_frequency"]["min"] == pytest.approx(fires.mean(axis=0).min())
    D = fresh.dictionary.astype(np.float64)
    cosines = [abs(D[i] @ D[j]) for i in range(32) for j in range(32) if i != j]
    assert facts["max_abs_cosine"] == pytest.approx(max(cosines))
    assert not list(out.glob(".*"))  # no temporary file left


def test_write_refuses_a_directory_holding_a_set_and_changes_nothing(written):
    out, config = written
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(DataError, match="already holds synth.json"):
        synthetic.write(out, dataclasses.replace(config, seed=5))
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_write_refuses_a_directory_holding_any_of_the_arrays(tmp_path):
    (tmp_path / "dictionary.npy").write_bytes(b"mine")
    with pytest.raises(DataError, match="dictionary.npy"):
        synthetic.write(tmp_path, tiny())
    assert [p.name for p in tmp_path.iterdir()] == ["dictionary.npy"]


def test_load_refuses_a_changed_file_naming_it(written, tmp_path):
    out, _ = written
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in out.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    data = bytearray((copy / "heldout_codes.npy").read_bytes())
    data[-1] ^= 1
    (copy / "heldout_codes.npy").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"heldout_codes\.npy has changed.*saejax synth"):
        synthetic.load(copy)
    (copy / "heldout_codes.npy").write_bytes((out / "heldout_codes.npy").read_bytes())
    (copy / "parents.npy").unlink()
    with pytest.raises(DataError, match=r"parents\.npy is missing"):
        synthetic.load(copy)


@pytest.mark.parametrize("field, value", [
    ("n_dims", 0), ("n_dims", 32), ("n_dims", 2.5), ("n_features", 1), ("num_examples", 0),
    ("num_heldout", 0), ("mean_l0", 0.0), ("mean_l0", 33.0), ("mean_l0", math.nan),
    ("zipf_exponent", -0.1), ("magnitude", "gaussian"), ("magnitude_mean", 0.0),
    ("magnitude_std", -1.0), ("correlation", 1.0), ("correlation", -0.1), ("group_size", 0),
    ("hierarchy", 1.0), ("hierarchy", 0.99), ("hierarchy", -0.5), ("noise_std", -0.1),
    ("seed", -1), ("seed", True)])
def test_every_invalid_setting_is_refused_by_name(field, value):
    with pytest.raises(DataError, match=rf"\b{field} = {re.escape(repr(value))}"):
        tiny(**{field: value})


def test_cli_writes_the_set_then_refuses_to_write_it_again(tmp_path, capsys):
    out = tmp_path / "synth"
    flags = ["--n-dims", "8", "--n-features", "32", "--num-examples", "500", "--num-heldout",
             "200", "--mean-l0", "3", "--magnitude", "exponential", "--seed", "7"]
    assert cli.main(["synth", str(out), *flags]) == 0
    printed = capsys.readouterr().out
    assert f"saejax train --data {out / 'x.npy'} --arch topk --k 3 --n-hidden 32" in printed
    config = synthetic.load(out).config
    assert config == tiny(num_examples=500, num_heldout=200, magnitude="exponential", seed=7)
    assert cli.main(["synth", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds synth.json" in err


def test_cli_refuses_a_bad_setting_naming_it(tmp_path, capsys):
    assert cli.main(["synth", str(tmp_path / "s"), "--n-dims", "600"]) == 2
    assert "n_dims = 600 (--n-dims on the command line), but it must be" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert cli.main(["synth", str(tmp_path / "s"), "--magnitude", "gaussian"]) == 2
    assert cli.main(["synth", str(tmp_path / "s"), "--seed", "x"]) == 2
