"""data.arrays: a user's array from .npy, .npz and .npz:NAME, memory-mapped and sampled by seed,
described with its file's sha256 (checked against hashlib), and every unusable file refused."""

import hashlib

import numpy as np
import pytest

from saejax.config import TrainConfig
from saejax.data import DataError, arrays, data_of, describe_array, detect_format, training_data


def numbered(rows=20, cols=3, dtype=np.float32):
    """An array whose first column is its row number, so a row read says which row it was."""
    x = np.random.default_rng(0).uniform(size=(rows, cols)).astype(dtype)
    x[:, 0] = np.arange(rows)
    return x


def test_a_npy_file_whole_with_its_description(tmp_path):
    x = numbered()
    np.save(tmp_path / "x.npy", x)
    got, info = training_data("array", str(tmp_path / "x.npy"))
    np.testing.assert_array_equal(got, x)
    assert got.dtype == np.float32 and not isinstance(got, np.memmap)
    data = (tmp_path / "x.npy").read_bytes()
    assert info == {"dataset": "array", "source": str(tmp_path / "x.npy"),
                    "path": str((tmp_path / "x.npy").resolve()), "npz_name": None,
                    "file_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                    "rows_in_file": 20, "shape": [20, 3], "dtype": "float32",
                    "num_examples": 20, "sampled": False, "sample_seed": None,
                    "normalization": {"kind": "none"}}


def test_dtypes_float64_stays_the_rest_become_float32(tmp_path):
    for stored, want in ((np.float64, np.float64), (np.float16, np.float32),
                         (np.int64, np.float32), (np.uint8, np.float32), (np.bool_, np.float32)):
        np.save(tmp_path / "x.npy", np.array([[1, 0], [0, 1]], dtype=stored))
        got, info = arrays.load_array(tmp_path / "x.npy")
        assert got.dtype == want and info["dtype"] == np.dtype(stored).name
        np.testing.assert_array_equal(got, [[1, 0], [0, 1]])


def test_the_file_is_hashed_in_chunks(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", numbered(200, 5))
    monkeypatch.setattr(arrays, "CHUNK_BYTES", 7)  # many chunks, the last one short
    want = hashlib.sha256((tmp_path / "x.npy").read_bytes()).hexdigest()
    assert arrays.file_sha256(tmp_path / "x.npy") == want


def test_a_sample_reads_the_rows_at_its_sorted_indices_by_seed(tmp_path):
    x = numbered(50)
    np.save(tmp_path / "x.npy", x)
    got, info = training_data("array", str(tmp_path / "x.npy"), num_examples=12, seed=3)
    rows = got[:, 0].astype(int)  # which rows were read
    assert len(set(rows)) == 12 and np.all(np.diff(rows) > 0) and 0 <= rows.min()
    np.testing.assert_array_equal(got, x[rows])
    np.testing.assert_array_equal(rows, arrays.sample_indices(50, 12, 3))
    assert info["sampled"] and info["sample_seed"] == 3
    assert (info["rows_in_file"], info["num_examples"], info["shape"]) == (50, 12, [12, 3])
    again, _ = training_data("array", str(tmp_path / "x.npy"), num_examples=12, seed=3)
    np.testing.assert_array_equal(again, got)
    other, _ = training_data("array", str(tmp_path / "x.npy"), num_examples=12, seed=4)
    assert not np.array_equal(other, got)
    # as many rows as the file holds, or more: all of them, in order, not a sample
    for n in (50, 80):
        whole, info = training_data("array", str(tmp_path / "x.npy"), num_examples=n)
        np.testing.assert_array_equal(whole, x)
        assert not info["sampled"] and info["num_examples"] == 50


def test_a_npy_file_is_memory_mapped_and_only_the_sample_read(tmp_path, monkeypatch):
    x = numbered(40)
    np.save(tmp_path / "x.npy", x)
    opened = []
    load = np.load

    def spy(*args, **kwargs):
        opened.append(load(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(np, "load", spy)
    got, _ = arrays.load_array(tmp_path / "x.npy", num_examples=5, seed=0)
    assert len(opened) == 1 and isinstance(opened[0], np.memmap) and opened[0].mode == "r"
    np.testing.assert_array_equal(got, x[arrays.sample_indices(40, 5, 0)])


def test_npz_members(tmp_path):
    x, y = numbered(6), numbered(4, 2, np.float64)
    np.savez(tmp_path / "one.npz", features=x)
    got, info = training_data("array", str(tmp_path / "one.npz"))
    np.testing.assert_array_equal(got, x)
    assert info["npz_name"] == "features" and info["source"] == str(tmp_path / "one.npz")
    np.savez_compressed(tmp_path / "two.npz", a=x, b=y)
    with pytest.raises(DataError, match=r"holds 2 arrays \(a, b\); pick one as --data .*:NAME"):
        training_data("array", str(tmp_path / "two.npz"))
    got, info = training_data("array", f"{tmp_path / 'two.npz'}:b", num_examples=3, seed=1)
    np.testing.assert_array_equal(got, y[arrays.sample_indices(4, 3, 1)])
    assert got.dtype == np.float64 and info["npz_name"] == "b" and info["sampled"]
    assert info["sha256"] == hashlib.sha256((tmp_path / "two.npz").read_bytes()).hexdigest()
    with pytest.raises(DataError, match="holds no array named 'c'; its arrays: a, b"):
        training_data("array", f"{tmp_path / 'two.npz'}:c")


def test_detect_format_knows_array_files(tmp_path):
    np.save(tmp_path / "x.npy", numbered())
    np.savez(tmp_path / "x.npz", a=numbered())
    assert detect_format(tmp_path / "x.npy") == "npy"
    assert detect_format(tmp_path / "x.npz") == "npz"
    assert detect_format(f"{tmp_path / 'x.npz'}:a") == "npz"
    with pytest.raises(DataError, match="does not exist.*FILE.npy, FILE.npz or FILE.npz:NAME"):
        detect_format(tmp_path / "gone.npy")
    assert arrays.is_array_spec("d/x.NPZ:feat") and not arrays.is_array_spec("d/IMAGES.mat")
    assert arrays.split_spec("d/x.npz:feat") == (arrays.Path("d/x.npz"), "feat")


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 3, 4)), r"shape \(2, 3, 4\); training data is 2-D"),
    (np.zeros(5), r"shape \(5,\); training data is 2-D"),
    (np.array([["a", "b"]]), "holds <U1 values; training data must be numeric"),
    (np.ones((2, 2), np.complex64), "holds complex64 values"),
    (np.zeros((0, 4), np.float32), r"empty array of shape \(0, 4\)"),
    (np.array([[0.0, np.nan], [np.inf, 1.0]]), "found 1 NaN and 1 Inf values out of 4"),
])
def test_unusable_arrays_are_refused(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(DataError, match=message):
        training_data("array", str(tmp_path / "x.npy"))
    np.savez(tmp_path / "x.npz", x=array)
    with pytest.raises(DataError, match=message):
        training_data("array", str(tmp_path / "x.npz"))


def test_unusable_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="gone.npy does not exist: give --data an existing"):
        training_data("array", str(tmp_path / "gone.npy"))
    with pytest.raises(DataError, match="needs --data FILE.npy"):
        training_data("array", None)
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot be read as a numeric NumPy array"):
        training_data("array", str(tmp_path / "obj.npy"))
    # a file of another format is named as such, with no word of pickles (NumPy's own message
    # would suggest allow_pickle for it)
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(DataError, match=r"text.npy is not an .npy file \(NumPy's np.save\): its "
                       r"first bytes are b'not nu'") as err:
        training_data("array", str(tmp_path / "text.npy"))
    assert "pickle" not in str(err.value)
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(DataError, match=r"text.npz is not an .npz file \(a zip archive"):
        training_data("array", str(tmp_path / "text.npz"))
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.npy is not an .npy file .* bytes are b''"):
        training_data("array", str(tmp_path / "empty.npy"))
    with open(tmp_path / "swapped.npz", "wb") as f:  # a file object: np.save adds no .npy
        np.save(f, numbered())
    with pytest.raises(DataError, match=r"swapped.npz is not an .npz file .* but an .npy file "
                       r"\(NumPy's np.save\): rename it to end in .npy"):
        training_data("array", str(tmp_path / "swapped.npz"))
    np.savez(tmp_path / "none.npz")
    with pytest.raises(DataError, match=r"none.npz holds no arrays; save one with np.savez"):
        training_data("array", str(tmp_path / "none.npz"))
    np.savez_compressed(tmp_path / "packed.npz", x=numbered())  # compressed: still a zip
    np.testing.assert_array_equal(training_data("array", str(tmp_path / "packed.npz"))[0],
                                  numbered())
    np.save(tmp_path / "x.npy", numbered())
    with pytest.raises(DataError, match="only an .npz holds named arrays; drop :a"):
        arrays.load_array(f"{tmp_path / 'x.npy'}:a")
    with pytest.raises(DataError, match="an array file ends in .npy or .npz"):
        arrays.load_array(tmp_path / "x.csv")


def test_describe_array_hashes_the_c_contiguous_bytes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    info = describe_array(x)
    assert info == {"dataset": "array", "source": "in-memory array", "shape": [3, 4],
                    "dtype": "float32", "sha256": hashlib.sha256(x.tobytes()).hexdigest()}
    assert describe_array(np.asfortranarray(x))["sha256"] == info["sha256"]
    assert describe_array(x[:, ::2])["sha256"] == hashlib.sha256(
        np.array([[0, 2], [4, 6], [8, 10]], np.float32).tobytes()).hexdigest()


def test_data_of_reads_the_model_file_again_only_unchanged(tmp_path):
    x = numbered()
    np.save(tmp_path / "x.npy", x)
    _, recorded = training_data("array", str(tmp_path / "x.npy"), 5)
    config = TrainConfig(dataset="array", data="x.npy", num_examples=5)  # a relative path
    got, info = data_of(config, recorded=recorded)  # the recorded absolute path: all rows
    np.testing.assert_array_equal(got, x)
    assert info["reused"]
    other = numbered(7, 3)
    np.save(tmp_path / "y.npy", other)
    np.testing.assert_array_equal(data_of(config, path=str(tmp_path / "y.npy"))[0], other)
    np.save(tmp_path / "x.npy", x + 1)
    with pytest.raises(DataError, match="x.npy, but the file has changed since"):
        data_of(config, recorded=recorded)
    (tmp_path / "x.npy").unlink()
    with pytest.raises(DataError, match="trained on an array at .*x.npy, which no longer exists"):
        data_of(config, recorded=recorded)
    memory = TrainConfig(dataset="array")
    with pytest.raises(DataError, match="in-memory array, not a file: pass --data FILE.npy"):
        data_of(memory, recorded=describe_array(x))


def test_asking_for_more_rows_than_the_file_holds_uses_them_all_and_says_so(tmp_path, caplog):
    from saejax.config import TrainConfig
    from saejax.data.datasets import config_data

    np.save(tmp_path / "x.npy", numbered(rows=20))
    config = TrainConfig(data=str(tmp_path / "x.npy"), num_examples=50, arch="topk", k=2,
                         n_hidden=4, lam=0.0)
    with caplog.at_level("WARNING", logger="saejax.data.datasets"):
        got, x, _ = config_data(config)
    assert x.shape == (20, 3) and got.num_examples == 20
    assert caplog.messages == [f"{tmp_path / 'x.npy'} holds 20 rows, fewer than the 50 asked "
                               "for (--num-examples): all 20 are used"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="saejax.data.datasets"):
        config_data(config.replace(num_examples=10))  # a sample: nothing to say
        config_data(config, all_rows=True)  # no --num-examples: every row, as asked
    assert caplog.messages == []
