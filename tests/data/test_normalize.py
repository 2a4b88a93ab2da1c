"""data.normalize: each normalization against numbers worked by hand and NumPy written here; a
record is JSON, applies to new data with the fitted numbers, and refuses another width."""

import json

import numpy as np
import pytest

from saejax.data import DataError, normalize, normalize_patches, training_data


def test_ufldl_on_a_2x3_array_worked_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]])
    # each row less its mean: [[-1, 0, 1], [0, 0, 0]]; the std of those six values (ddof=1):
    # sqrt((1 + 1) / 5); nothing lies beyond 3 std, so each value d becomes 0.5 + 0.4 d / (3 std)
    record = normalize.fit("ufldl", x)
    std = np.sqrt(2 / 5)
    assert record == {"kind": "ufldl", "std": pytest.approx(std, rel=1e-15)}
    step = 0.4 / (3 * std)  # 0.2108185...
    np.testing.assert_allclose(normalize.apply(record, x),
                               [[0.5 - step, 0.5, 0.5 + step], [0.5, 0.5, 0.5]], rtol=1e-15)
    # new data, the fitted std: [0, 10, 20] less its mean is [-10, 0, 10], truncated to +-3 std
    np.testing.assert_allclose(normalize.apply(record, np.array([[0.0, 10.0, 20.0]])),
                               [[0.1, 0.5, 0.9]], rtol=1e-15)


def test_standardize_on_a_2x3_array_worked_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 7.0]])
    # per feature: mean [2, 2, 5], std (ddof=0) [1, 0, 2]; the constant feature's std is 1
    record = normalize.fit("standardize", x)
    assert record == {"kind": "standardize", "mean": [2.0, 2.0, 5.0], "std": [1.0, 1.0, 2.0]}
    np.testing.assert_array_equal(normalize.apply(record, x), [[-1, 0, -1], [1, 0, 1]])
    np.testing.assert_array_equal(normalize.apply(record, np.array([[4.0, 3.0, 5.0]])),
                                  [[2, 1, 0]])


def test_against_numpy_on_random_data():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (50, 7))
    x[:, 2] = 5.0  # a constant feature
    new = rng.normal(0.0, 10.0, (9, 7))  # far wider: much of it is truncated

    d = x - x.mean(axis=1)[:, None]
    s = np.sqrt(np.sum((d - d.mean()) ** 2) / (d.size - 1))
    e = new - new.mean(axis=1)[:, None]
    want = (np.minimum(np.maximum(e, -3 * s), 3 * s) / (3 * s) + 1) * 0.4 + 0.1
    record = normalize.fit("ufldl", x)
    np.testing.assert_allclose(normalize.apply(record, new), want, rtol=1e-12)
    assert (want == 0.1).any() and (want == 0.9).any()
    # on its own training data it is exactly UFLDL's normalizeData (data.patches)
    np.testing.assert_allclose(normalize.apply(record, x), normalize_patches(x), rtol=1e-12)

    mean = x.sum(axis=0) / len(x)
    std = np.sqrt(((x - mean) ** 2).sum(axis=0) / len(x))
    std[2] = 1.0
    record = normalize.fit("standardize", x)
    np.testing.assert_allclose(normalize.apply(record, new), (new - mean) / std, rtol=1e-12)
    np.testing.assert_allclose(normalize.apply(record, x)[:, 2], 0.0, atol=1e-15)


@pytest.mark.parametrize("kind", ["none", "ufldl", "standardize"])
def test_records_are_json_and_keep_float32(kind):
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    record = normalize.fit(kind, x)
    back = json.loads(json.dumps(record))
    assert back == record
    out = normalize.apply(back, x)
    assert out.dtype == np.float32 and out.shape == x.shape
    if kind == "none":
        assert out is x  # nothing copied
    # integers become float32
    assert normalize.apply(record, np.arange(8).reshape(2, 4)).dtype == (
        np.int64 if kind == "none" else np.float32)


def test_refusals():
    record = normalize.fit("standardize", np.ones((3, 4)))
    with pytest.raises(DataError, match="fitted on 4 features, but this data has 5"):
        normalize.apply(record, np.ones((2, 5)))
    with pytest.raises(DataError, match="unknown normalization 'zca'"):
        normalize.fit("zca", np.ones((3, 4)))
    with pytest.raises(DataError, match="every example is constant"):
        normalize.fit("ufldl", np.arange(6.0)[:, None] * np.ones((1, 3)))
    with pytest.raises(DataError, match=r"\(M, N\) array.*shape \(4,\)"):
        normalize.fit("standardize", np.ones(4))


def test_training_data_applies_and_records_the_normalization():
    raw, info = training_data("digits", None, 100)
    assert info["normalization"] == {"kind": "none"}
    x, info = training_data("digits", None, 100, normalize="standardize")
    assert info["normalization"]["kind"] == "standardize"
    np.testing.assert_allclose(info["normalization"]["mean"], raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(x, normalize.apply(normalize.fit("standardize", raw), raw))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-6)


def test_per_feature_is_the_map_apply_uses_and_none_for_ufldl():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 7.0]])
    mean, std = normalize.per_feature(normalize.fit("standardize", x), 3)
    np.testing.assert_array_equal(mean, [2.0, 2.0, 5.0])  # worked by hand above
    np.testing.assert_array_equal(std, [1.0, 1.0, 2.0])
    mean, std = normalize.per_feature({"kind": "none"}, 3)
    np.testing.assert_array_equal(mean, np.zeros(3))
    np.testing.assert_array_equal(std, np.ones(3))
    assert normalize.per_feature(normalize.fit("ufldl", x), 3) is None
    with pytest.raises(DataError, match="fitted on 3 features, but this data has 4"):
        normalize.per_feature(normalize.fit("standardize", x), 4)


@pytest.mark.parametrize("record", [{}, {"kind": "whiten"}])
def test_per_feature_refuses_a_record_apply_refuses(record):
    # a record with no kind, or one this version does not know, is no identity map
    with pytest.raises(DataError, match="unknown normalization record"):
        normalize.apply(record, np.ones((2, 3)))
    with pytest.raises(DataError, match="unknown normalization record"):
        normalize.per_feature(record, 3)


@pytest.mark.parametrize("kind", ["ufldl", "standardize"])
def test_a_floating_array_keeps_its_dtype_and_integers_become_float32(kind):
    x = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 5.0], [1.0, 0.0, 4.0]])
    record = normalize.fit(kind, x)
    want = normalize.apply(record, x)
    for dtype, expected in [(np.float16, np.float16), (np.float32, np.float32),
                            (np.int64, np.float32), (np.uint8, np.float32)]:
        got = normalize.apply(record, x.astype(dtype))
        assert got.dtype == expected, (dtype, got.dtype)
        np.testing.assert_allclose(got, want, rtol=2e-3 if dtype == np.float16 else 1e-6)


def test_ufldl_takes_a_float32_rows_mean_in_float64():
    # [1e7, 1e7 + 1, 1e7 + 3] is exact in float32, but its mean 1e7 + 4/3 rounds to 1e7 + 1
    # there: the row less its float64 mean is [-4/3, -1/3, 5/3], each d then 0.5 + 0.4 d / 3
    x = np.array([[1e7, 1e7 + 1, 1e7 + 3], [2.0, 4.0, 9.0]], dtype=np.float32)
    record = {"kind": "ufldl", "std": 1.0}
    got = normalize.apply(record, x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[0], [0.5 - 16 / 90, 0.5 - 4 / 90, 0.5 + 20 / 90], rtol=1e-7)
    x64 = x.astype(np.float64)
    d = x64 - x64.sum(axis=1, keepdims=True) / 3
    want = (np.minimum(np.maximum(d, -3.0), 3.0) / 3.0 + 1) * 0.4 + 0.1
    np.testing.assert_allclose(got, want, rtol=1e-7)


def test_per_feature_is_float64_whatever_numbers_the_record_holds():
    # a record written by hand may hold whole numbers: JSON reads them as ints
    mean, std = normalize.per_feature({"kind": "standardize", "mean": [0, 1], "std": [2, 4]}, 2)
    assert mean.dtype == np.float64 and std.dtype == np.float64
    np.testing.assert_array_equal(mean, [0.0, 1.0])
    np.testing.assert_array_equal(std, [2.0, 4.0])
