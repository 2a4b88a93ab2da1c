"""Training data read on demand: the rows of an activations cache, gathered from its memory-mapped
shards a minibatch at a time, so that a cache larger than memory trains without being loaded.

    stream = ActivationStream.open(DIR)      the record checked, every shard's sha256 verified
    stream.take(idx)                          rows idx (any shape of ints) -> idx.shape + (N,)
    stream.evaluation_rows()                  the rows J, the summary and the start are taken on
    stream.blocks(size)                       every row in order, ``size`` at a time

A minibatch optimizer on a stream draws the same indices as on the loaded array (train.step's
``minibatch_indices``), so a streamed run equals the in-memory run of the same rows. What needs
all the data at once (the starting J, the final statistics, the decoder bias's starting mean
and a fitted normalization) is taken on the evaluation rows: every row of a cache of at most
``EVAL_ROWS`` rows, else a seeded sample of that many, as config.json records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saejax.data import activation_files as af
from saejax.data import normalize as normalization
from saejax.data.arrays import sample_indices
from saejax.data.errors import DataError, check_finite

# Rows of the evaluation set: 65,536 rows of width 576 are 151 MB in float32.
EVAL_ROWS = 65_536


@dataclass
class ActivationStream:
    """The rows of an activations cache (all of them, or the sorted global rows ``rows``), read
    on demand and normalized by ``normalization`` (a ``normalize.fit`` record)."""

    home: Path
    record: dict
    rows: np.ndarray | None = None  # sorted global row indices; None: every row
    normalization: dict = field(default_factory=lambda: {"kind": "none"})
    dtype: type = np.float32
    eval_seed: int = 0
    info: dict = field(default_factory=dict)  # its description for config.json (``open``)
    _shards: list = field(default_factory=list, repr=False)
    _starts: np.ndarray = field(default=None, repr=False)
    _evaluation: np.ndarray = field(default=None, repr=False)

    @classmethod
    def open(cls, home, num_examples: int | None = None, seed: int = 0,
             normalize: str = "none") -> tuple[ActivationStream, dict]:
        """The stream of the cache in ``home`` and its description for config.json (as
        ``arrays.load_array`` describes a loaded cache, plus ``streamed``).

        Args:
          home: a directory that ``saejax activations`` wrote, complete.
          num_examples: rows to train on; None (or at least the cache's rows): all of them;
            fewer: a seeded sample (``arrays.sample_indices``), as a loaded cache samples.
          seed: seeds that sample and the evaluation sample.
          normalize: a normalization (``normalize.fit``), fitted on the evaluation rows.

        Raises:
          DataError: an unfinished cache, a missing or changed shard, or NaN/Inf evaluation rows.
        """
        home = Path(home)
        record = af.read_record(home)
        digest = af.verify(home, record)
        total = sum(s["rows"] for s in record["shards"])
        sampled = num_examples is not None and num_examples < total
        rows = sample_indices(total, num_examples, seed) if sampled else None
        stream = cls(home, record, rows, eval_seed=seed)
        evaluation = stream.evaluation_rows()
        check_finite(evaluation, f"the activations in {home}")
        stream.normalization = normalization.fit(normalize, evaluation)
        stream._evaluation = normalization.apply(stream.normalization, evaluation)
        m, n = stream.shape
        info = {"dataset": "array", "source": str(home), "path": str(home.resolve()),
                "npz_name": None, "file_bytes": sum((home / s["activations"]).stat().st_size
                                                    for s in record["shards"]),
                "sha256": digest, "rows_in_file": int(total), "shape": [m, n],
                "dtype": record["dtype"], "num_examples": m, "sampled": bool(sampled),
                "sample_seed": int(seed) if sampled else None,
                "activations": af.describe(home, record),
                "streamed": {"evaluation_rows": stream.evaluation_size(),
                             "evaluation_seed": int(seed)},
                "normalization": stream.normalization}
        stream.info = info
        return stream, info

    def __post_init__(self):
        self._shards = [np.load(self.home / s["activations"], mmap_mode="r")
                        for s in self.record["shards"]]
        sizes = [len(s) for s in self._shards]
        if sizes != [s["rows"] for s in self.record["shards"]]:
            raise DataError(f"the shards in {self.home} do not hold the rows its record lists: "
                            "write the cache again (saejax activations).")
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        """(M, N): the rows trained on and the width."""
        m = int(self._starts[-1]) if self.rows is None else len(self.rows)
        return m, int(self.record["d_model"])

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx) -> np.ndarray:
        """Rows ``idx`` (indices into the stream's M rows, any shape, repeats allowed), read
        from the shards in order and normalized: an array of shape ``idx.shape + (N,)``."""
        idx = np.asarray(idx, np.int64)
        flat = idx.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"rows {flat.min()}..{flat.max()} of a stream of {len(self)} rows")
        wanted, inverse = np.unique(flat, return_inverse=True)
        rows = wanted if self.rows is None else self.rows[wanted]
        out = np.empty((len(rows), self.shape[1]), np.float32)
        bounds = np.searchsorted(rows, self._starts)
        for shard, start, lo, hi in zip(self._shards, self._starts[:-1], bounds[:-1], bounds[1:],
                                        strict=True):
            if hi > lo:
                out[lo:hi] = shard[rows[lo:hi] - start]
        out = normalization.apply(self.normalization, out)
        return np.asarray(out[inverse], self.dtype).reshape(idx.shape + (self.shape[1],))

    def evaluation_size(self) -> int:
        return min(len(self), EVAL_ROWS)

    def evaluation_rows(self) -> np.ndarray:
        """The rows the starting J, the final statistics and the starting mean are taken on:
        all rows when there are at most ``EVAL_ROWS``, else a sample of that many seeded by
        ``eval_seed`` (sorted)."""
        if self._evaluation is None:  # read once: a run and its sweep's blocks share them
            m = len(self)
            self._evaluation = self.take(np.arange(m) if m <= EVAL_ROWS else
                                         sample_indices(m, EVAL_ROWS, self.eval_seed))
        return self._evaluation

    def blocks(self, size: int = 8192):
        """Every row, in order, ``size`` rows at a time (normalized)."""
        for start in range(0, len(self), size):
            yield self.take(np.arange(start, min(start + size, len(self))))


def is_stream(data) -> bool:
    """Whether training data is read on demand (an ``ActivationStream``)."""
    return isinstance(data, ActivationStream)
