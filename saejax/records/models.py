"""Trained models out of saejax and back: safetensors weights and a JSON config.

Data flow::

    run directory (checkpoints/)  --+
    sweep directory + member index --+--> load(path, member) -> (TrainConfig, params)
    export directory               --+             |
                                                   v
                          export(path, out, member) -> out/weights.safetensors, out/cfg.json

weights.safetensors holds ``W1`` (H, N), ``b1`` (H,), ``W2`` (N, H) (absent when tied: the
decoder uses W1^T) and ``b2`` (N,), at the dtype trained, with a2 = sigmoid(W1 x + b1) and
a3 = sigmoid(W2 a2 + b2) (z3 itself for the linear decoder). The family (cfg.json's
``config.arch``: relu-l1, topk, batchtopk, jumprelu) reads the same tensors as
pre = (x - b2) W1^T + b1, codes f = ``saejax.architectures.encode``, x_hat = f W2^T + b2,
and adds jumprelu's ``log_threshold`` (H,) or batchtopk's inference ``threshold`` ().
cfg.json holds arch, n_visible, n_hidden, the architecture's knobs and own settings
(``schema.KNOBS``, ``schema.OWN_SETTINGS``: the sigmoid network's rho, beta and penalty), lam,
decoder, tied, dtype, the whole training config, the data description, the normalization
fitted on the training data (``load_normalization``; encoding applies it to new data) and the
final summary. Both are the layout the SAE tooling exchanges
weights in, so the model loads without saejax or JAX (NumPy: ``safetensors.numpy.load_file``;
PyTorch: ``safetensors.torch.load_file``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from saejax.config import TrainConfig
from saejax.records import files, rundir, saelens
from saejax.records.checkpoints import Checkpointer, CheckpointError
from saejax.records.sweep_record import load_member
from saejax.schema import AXES, KNOBS, OWN_SETTINGS

WEIGHTS = "weights.safetensors"
CONFIG = "cfg.json"
FORMAT = "saejax-sparse-autoencoder"
FORMATS = ("saejax", "saelens")  # what export writes: saejax's own layout, or SAELens's
NO_NORMALIZATION = {"kind": "none"}


class ModelError(ValueError):
    """A path that holds no loadable model, or a model whose files disagree."""


def load(path: str | Path, member: int | None = None) -> tuple[TrainConfig, dict]:
    """``(config, params)`` of a trained autoencoder, params as NumPy arrays.

    Args:
      path: a run directory (``saejax train``), a sweep directory (``saejax sweep``; give
        ``member``), an export directory (``saejax export``) or a directory in SAELens's
        layout (``records.saelens``: exported by saejax or saved by SAELens).
      member: the sweep member's index (its row in results.csv); only for a sweep.

    Returns:
      The member's own config (a sweep member's rho, beta, lam, lr and seed filled in) and
      ``{"W1", "b1", "W2", "b2"}`` (no "W2" when tied).

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ModelError: it holds no run, sweep or export, a member index is missing or out of
        range, or the tensors do not fit cfg.json.
      CheckpointError: a run without a usable checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a run, sweep or export directory.")
    with _readable(path):
        if saelens.is_saelens(path):  # a model in SAELens's layout, saejax's or another's
            _no_member(member, path, "a SAELens model")
            return saelens.read(path)
        if (path / WEIGHTS).exists() or (path / CONFIG).exists():
            _no_member(member, path, "an export")
            config, params, _ = _read_export(path)
            return config, params
        kind = rundir.kind_of(path)
        if kind == "run":
            _no_member(member, path, "a training run")
            config, params, _ = _from_run(path)
            return config, params
        if kind == "sweep":
            config, params, _ = _from_sweep(path, member)
            return config, params
    raise ModelError(f"{path} holds no saejax run, sweep or export (no config.json, checkpoints "
                     f"or {WEIGHTS}).")


def export(path: str | Path, out: str | Path, member: int | None = None,
           format: str = "saejax") -> Path:
    """Writes a run's or a sweep member's model to ``out``: ``weights.safetensors`` and
    ``cfg.json`` (``format="saejax"``), or SAELens's ``sae_weights.safetensors`` and
    ``cfg.json`` (``format="saelens"``, ``records.saelens``; not for the sigmoid network).

    ``out`` must not hold an export already (nothing is overwritten); it is created if needed.
    Both files are written whole or not at all. Returns ``out``.
    """
    if format not in FORMATS:
        raise ModelError(f"unknown export format {format!r}; choose one of {list(FORMATS)}.")
    path, out = Path(path), Path(out)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a run or sweep directory.")
    kind = rundir.kind_of(path)
    with _readable(path):
        if kind == "run":
            _no_member(member, path, "a training run")
            config, params, record = _from_run(path)
        elif kind == "sweep":
            config, params, record = _from_sweep(path, member)
        else:
            raise ModelError(f"{path} holds no saejax run or sweep to export.")
    normalization = record["data"].get("normalization") or NO_NORMALIZATION
    if format == "saelens":
        tensors, cfg = saelens.to_saelens(config, params, normalization, record)
        return saelens.write(out, tensors, cfg)
    n_hidden, n_visible = params["W1"].shape
    own = (*KNOBS[config.arch], *(s for s, archs in OWN_SETTINGS.items() if config.arch in archs),
           "lam")
    cfg = {"format": FORMAT, "arch": config.arch, "n_visible": int(n_visible),
           "n_hidden": int(n_hidden),
           **{k: getattr(config, k) for k in (*own, "decoder", "tied", "dtype")},
           "config": asdict(config), **record, "normalization": normalization}
    return _write(out, params, cfg)


def load_data_info(path: str | Path, member: int | None = None) -> dict:
    """The description of the data a model was trained on (config.json's, or cfg.json's,
    ``data``): for an array file its path, sha256 and rows, for any data set its normalization;
    ``{}`` when none was recorded. ``member`` is checked as ``load`` checks it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give a run, sweep or export directory.")
    if (path / CONFIG).exists():
        _no_member(member, path, "an export")
        return files.read_json(path / CONFIG).get("data") or {}
    kind = rundir.kind_of(path)
    if kind not in ("run", "sweep"):
        raise ModelError(f"{path} holds no saejax run, sweep or export (no config.json, "
                         f"checkpoints or {WEIGHTS}).")
    record = files.read_json(path / "config.json")
    if kind == "run":
        _no_member(member, path, "a training run")
    else:
        _check_member(path, member, len(record["grid"]["rho"]))
    return record.get("data") or {}


def load_normalization(path: str | Path, member: int | None = None) -> dict:
    """The normalization record (``saejax.data.normalize.fit``) of the data a model was trained
    on: its fitted numbers, to apply to new data before encoding (``normalize.apply``). A model
    recorded before normalizations were, or trained on data given in Python without one, has
    ``{"kind": "none"}``."""
    path = Path(path)
    if (path / CONFIG).exists():
        cfg = files.read_json(path / CONFIG)
        if cfg.get("normalization"):
            return cfg["normalization"]
    return load_data_info(path, member).get("normalization") or NO_NORMALIZATION


def _write(out: Path, tensors: dict, cfg: dict) -> Path:
    """out/weights.safetensors (written whole or not at all) and out/cfg.json, refusing an
    ``out`` that holds either already."""
    taken = [name for name in (WEIGHTS, CONFIG) if (out / name).exists()]
    if taken:
        raise ModelError(f"{out} already holds {', '.join(taken)}; nothing was changed. Choose "
                         "another output directory.")
    if out.exists() and not out.is_dir():
        raise ModelError(f"{out} is a file, not a directory: choose another output directory.")
    out.mkdir(parents=True, exist_ok=True)
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    arrays = {k: np.asarray(v, order="C") for k, v in tensors.items()}  # a 0-d stays 0-d
    try:
        files.replace(out / WEIGHTS,
                      lambda tmp: save_file(arrays, str(tmp), metadata={"format": cfg["format"]}))
    except SafetensorError as err:  # safetensors' own error for a write that failed
        raise files.RecordError(f"cannot write {out / WEIGHTS}: {err}. Nothing there was "
                                "changed; free some space or choose another directory.") from err
    files.write_json(out / CONFIG, {**cfg, "weights_sha256": files.sha256(out / WEIGHTS)})
    return out


def _read_weights(path: Path, cfg: dict) -> dict:
    """The tensors of ``path/weights.safetensors``, refused when its bytes differ from the
    sha256 that cfg.json recorded at export (exports older than the checksum have none)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    weights = path / WEIGHTS
    recorded = cfg.get("weights_sha256")
    try:
        if recorded is not None and files.sha256(weights) != recorded:
            raise ModelError(f"{weights} is corrupt: its sha256 differs from the one {CONFIG} "
                             "recorded when it was exported, so the file changed since. Export "
                             "the model again from its run or sweep.")
        return load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"{weights} cannot be read ({err}).") from err


STACK_FORMAT = "saejax-stacked-autoencoder"


def export_stack(stack: dict, out: str | Path, info: dict | None = None) -> Path:
    """Writes a stacked network (``saejax.stacked``) as ``out/weights.safetensors``, one tensor
    group per layer (``layers.<l>.W``, ``layers.<l>.b``, then ``softmax.W``, ``softmax.b``), and
    ``out/cfg.json`` with the layer sizes and ``info`` (which may not name the keys saejax
    writes: format, sizes, num_classes). Nothing is overwritten."""
    taken = sorted({"format", "sizes", "num_classes"} & set(info or {}))
    if taken:
        raise ValueError(f"info may not hold {', '.join(taken)}: export_stack writes those "
                         "keys itself. Rename them.")
    tensors = {f"layers.{i}.{k}": np.asarray(v) for i, layer in enumerate(stack["layers"])
               for k, v in layer.items()}
    tensors.update({f"softmax.{k}": np.asarray(v) for k, v in stack["softmax"].items()})
    sizes = [int(stack["layers"][0]["W"].shape[1])] + [int(layer["W"].shape[0])
                                                       for layer in stack["layers"]]
    return _write(Path(out), tensors, {"format": STACK_FORMAT, "sizes": sizes,
                                       "num_classes": int(stack["softmax"]["W"].shape[0]),
                                       **(info or {})})


def load_stack(path: str | Path) -> tuple[dict, dict]:
    """``(cfg, stack)`` of an exported stacked network, its tensors checked against cfg.json."""
    path = Path(path)
    missing = [name for name in (WEIGHTS, CONFIG) if not (path / name).exists()]
    if missing:
        raise ModelError(f"{path} lacks {', '.join(missing)}: an export has both files.")
    cfg = files.read_json(path / CONFIG)
    if cfg.get("format") != STACK_FORMAT:
        raise ModelError(f"{path} holds no stacked network (format {cfg.get('format')!r}); "
                         "load a single autoencoder with saejax.load.")
    tensors = _read_weights(path, cfg)
    sizes, k = cfg["sizes"], cfg["num_classes"]
    want = {f"layers.{i}.W": (h, n) for i, (n, h) in enumerate(zip(sizes[:-1], sizes[1:],
                                                                   strict=True))}
    want.update({f"layers.{i}.b": (h,) for i, h in enumerate(sizes[1:])})
    want.update({"softmax.W": (k, sizes[-1]), "softmax.b": (k,)})
    got = {name: tuple(v.shape) for name, v in tensors.items()}
    if got != want:
        raise ModelError(f"{path / WEIGHTS} holds tensors {got}, but cfg.json describes {want}.")
    stack = {"layers": [{"W": tensors[f"layers.{i}.W"], "b": tensors[f"layers.{i}.b"]}
                        for i in range(len(sizes) - 1)],
             "softmax": {"W": tensors["softmax.W"], "b": tensors["softmax.b"]}}
    return cfg, stack


@contextmanager
def _readable(path: Path):
    """Records of the right JSON type that lack a field saejax wrote (or hold the wrong kind of
    value there) are refused by name instead of failing deep inside."""
    try:
        yield
    except (KeyError, TypeError) as err:
        raise ModelError(f"{path} holds a record saejax cannot read ({type(err).__name__}: "
                         f"{err}): it was not written by saejax, or it is damaged.") from err


def _no_member(member, path, what) -> None:
    if member is not None:
        raise ModelError(f"{path} is {what}, not a sweep: leave out member=.")


def _check_member(path, member, size: int) -> None:
    if member is None:
        raise ModelError(f"{path} is a sweep of {size} members: give member=, 0 to "
                         f"{size - 1} (the row of results.csv).")
    if not 0 <= member < size:
        raise ModelError(f"member={member} is outside the sweep's {size} members (0 to "
                         f"{size - 1}).")


def _from_run(path: Path):
    """A training run's config, its latest checkpoint's params and its record."""
    record = files.read_json(path / "config.json")
    config = TrainConfig(**record["config"])
    checkpoints = Checkpointer(path / "checkpoints")
    if checkpoints.latest_step() is None:
        raise CheckpointError(
            f"{path} holds no checkpoint yet: the run has not saved one. Let it train until it "
            "writes one (every --checkpoint-every steps, at most once per --checkpoint-seconds, "
            "and at its end), or resume it.")
    try:
        state = checkpoints.restore_named(remedy=(
            "Restore the run directory from a copy, or train the run again: deleting the "
            "checkpoint would leave an earlier one, not the run's final parameters, to read."))
    finally:
        checkpoints.close()
    params = {k: np.asarray(v) for k, v in state["params"].items()}
    summary_path = path / "summary.json"
    summary = files.read_json(summary_path) if summary_path.exists() else {}
    summary.pop("rho_hat", None)  # per-unit values: in the run directory, not the export
    return config, params, {"data": record.get("data", {}), "summary": summary,
                            "source": {"run": str(path), "step": int(state["step"])}}


def _from_sweep(path: Path, member: int | None):
    """A sweep member's own config, params and results row."""
    record = files.read_json(path / "config.json")
    _check_member(path, member, len(record["grid"]["rho"]))
    try:
        params = load_member(path, member)
    except FileNotFoundError as err:
        raise ModelError(str(err)) from err
    grid = record["grid"]
    config = TrainConfig(**record["config"]).replace(
        **{a: type(getattr(TrainConfig(), a))(grid[a][member]) for a in AXES})
    rows = files.read_json(path / "results.json", list) if (path / "results.json").exists() else []
    summary = rows[member] if member < len(rows) else {}
    return config, params, {"data": record.get("data", {}), "summary": summary,
                            "source": {"sweep": str(path), "member": member}}


def _read_export(path: Path):
    """An export directory's config and params, the tensors checked against cfg.json."""
    missing = [name for name in (WEIGHTS, CONFIG) if not (path / name).exists()]
    if missing:
        raise ModelError(f"{path} lacks {', '.join(missing)}: an export has both files.")
    cfg = files.read_json(path / CONFIG)
    if cfg.get("format") == STACK_FORMAT:
        raise ModelError(f"{path} holds a stacked network, not one autoencoder: load it with "
                         "saejax.records.models.load_stack.")
    try:
        config = TrainConfig(**cfg["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{path / CONFIG} is not a saejax export config ({err}).") from err
    params = _read_weights(path, cfg)
    h, n = cfg["n_hidden"], cfg["n_visible"]
    want = {"W1": (h, n), "b1": (h,), "b2": (n,)}
    if not config.tied:
        want["W2"] = (n, h)
    from saejax.schema import EXTRA_PARAMS  # jumprelu's thresholds, batchtopk's

    want.update({k: shape(h) for k, shape in EXTRA_PARAMS.get(config.arch, {}).items()})
    got = {k: tuple(v.shape) for k, v in params.items()}
    if got != want:
        raise ModelError(f"{path / WEIGHTS} holds tensors {got}, but cfg.json describes "
                         f"{want} ({n} visible, {h} hidden units"
                         f"{', tied' if config.tied else ''}).")
    dtypes = {k: str(v.dtype) for k, v in params.items() if str(v.dtype) != config.dtype}
    if dtypes:
        raise ModelError(f"{path / WEIGHTS} holds tensors of dtype {dtypes}, but cfg.json "
                         f"says {config.dtype}: the export was altered. Export it again.")
    return config, params, cfg
