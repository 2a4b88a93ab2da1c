"""Models in SAELens's layout: ``cfg.json`` + ``sae_weights.safetensors``, written for the
architectures SAELens has and read back into saejax's params.

The layout is the one sae-lens 6.x saves and loads (``SAE.save_model``, ``SAE.load_from_disk``;
its ``SAEConfig.to_dict``):

    saejax          SAELens (inference)   tensors                         cfg.json beyond the base
    relu-l1         standard              W_enc, b_enc, W_dec, b_dec      -
    topk            topk                  W_enc, b_enc, W_dec, b_dec      k, rescale_acts_by_decoder_norm
    batchtopk       jumprelu              ... + threshold (its one        -
                                          threshold, per latent)
    jumprelu        jumprelu              ... + threshold = exp(log_threshold)

with W_enc = W1^T (N, H), b_enc = b1, W_dec = W2^T (H, N), b_dec = b2, and the base keys d_in,
d_sae, dtype, device, apply_b_dec_to_input (true: SAELens subtracts b_dec before encoding, as
saejax does), normalize_activations ("none"), reshape_activations ("none"), architecture and
metadata. Both compute pre = (x - b_dec) W_enc + b_enc and x_hat = f W_dec + b_dec, so the codes
and reconstructions agree to rounding. A model trained on standardized data has the
standardization folded into its weights (W_enc / std, W_dec * std, b_dec * std + mean), so
SAELens's model takes the raw data. saejax's own record (the config, the data, the summary)
rides in ``metadata.saejax``.

The sigmoid network has no SAELens architecture, nor has a model trained on data normalized
UFLDL's way (not an affine map per input); both are refused, naming the native export.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from saejax.config import TrainConfig
from saejax.data import normalize
from saejax.records import files

WEIGHTS = "sae_weights.safetensors"
CONFIG = "cfg.json"
# The sae-lens layout version the files follow (metadata.sae_lens_version; a config without one
# is read by SAELens as a pre-6.0 config).
LAYOUT_VERSION = "6.0.0"
# saejax's architecture -> SAELens's inference architecture, and back.
TO_SAELENS = {"relu-l1": "standard", "topk": "topk", "batchtopk": "jumprelu",
              "jumprelu": "jumprelu"}
FROM_SAELENS = {"standard": "relu-l1", "topk": "topk", "jumprelu": "jumprelu"}


class SAELensError(ValueError):
    """A model that has no SAELens layout, or a directory that holds no readable one."""


def is_saelens(path: str | Path) -> bool:
    """Whether ``path`` holds a model in SAELens's layout (its weights file)."""
    return (Path(path) / WEIGHTS).is_file()


def to_saelens(config: TrainConfig, params: dict, normalization: dict | None = None,
               record: dict | None = None) -> tuple[dict, dict]:
    """``(tensors, cfg)`` of a saejax model in SAELens's layout (see the module docstring).

    Raises:
      SAELensError: the sigmoid network, or a normalization SAELens cannot express.
    """
    if config.arch not in TO_SAELENS:
        raise SAELensError(
            f"the {config.arch} network has no SAELens architecture (SAELens has "
            f"{', '.join(TO_SAELENS)} of saejax's); export it in saejax's native format "
            "instead: saejax export RUN OUT (weights.safetensors + cfg.json).")
    p = {k: np.asarray(v) for k, v in params.items()}
    dtype = p["W1"].dtype
    W_enc, W_dec, b_dec = p["W1"].T, p["W2"].T, p["b2"]
    norm = normalization or {"kind": "none"}
    affine = normalize.per_feature(norm, W_enc.shape[0])
    if affine is None:
        raise SAELensError(
            f"this model was trained on data normalized the {norm['kind']} way, which SAELens "
            "cannot apply; export it in saejax's native format (saejax export RUN OUT), whose "
            "encode applies it, or train on data with --normalize none or standardize.")
    if norm["kind"] == "standardize":  # x' = (x - mean) / std, folded into the weights
        mean, std = affine
        W_enc = W_enc / std[:, None]
        W_dec = W_dec * std[None, :]
        b_dec = b_dec * std + mean
    tensors = {"W_enc": W_enc, "b_enc": p["b1"], "W_dec": W_dec, "b_dec": b_dec}
    h, n = p["W1"].shape
    if config.arch == "jumprelu":
        tensors["threshold"] = np.exp(p["log_threshold"])
    if config.arch == "batchtopk":  # inference: a JumpReLU with the one threshold (>= 0)
        tensors["threshold"] = np.full((h,), max(float(p["threshold"]), 0.0))
    tensors = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in tensors.items()}
    cfg = {"d_in": int(n), "d_sae": int(h), "dtype": str(dtype), "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "none", "architecture": TO_SAELENS[config.arch],
           "metadata": {"sae_lens_version": LAYOUT_VERSION,
                        "saejax": {"arch": config.arch, "config": asdict(config),
                                   **(record or {})}}}
    if config.arch == "topk":
        cfg.update(k=int(config.k), rescale_acts_by_decoder_norm=False)
    act = ((record or {}).get("data") or {}).get("activations")
    if act:  # trained on a language model's activations: where they came from, as SAELens says
        cfg["metadata"].update(model_name=act["model"], context_size=int(act["context"]),
                               prepend_bos=True, exclude_special_tokens=(
                                   [] if act["bos_kept"] else [int(act["bos_id"])]))
        if (hook := hook_name(act)) is not None:
            cfg["metadata"]["hook_name"] = hook
    return tensors, cfg


# saejax's sites -> TransformerLens's hook names (SAELens's hook_name), {L} the block. mlp_in
# has none: saejax's is the normed stream times the norm's weight, TransformerLens's
# ln2.hook_normalized the stream before the weight, so an SAE of one would misread the other.
HOOKS = {"resid_pre": "blocks.{L}.hook_resid_pre", "attn_out": "blocks.{L}.hook_attn_out",
         "mlp_out": "blocks.{L}.hook_mlp_out", "resid_post": "blocks.{L}.hook_resid_post"}


def hook_name(act: dict) -> str | None:
    """The TransformerLens hook name of a cache's site (``activation_files.describe``); None
    for a site TransformerLens has no hook of the same values for (mlp_in)."""
    hook = HOOKS.get(act["site"])
    return None if hook is None else hook.format(L=int(act["layer"]))


def from_saelens(cfg: dict, tensors: dict) -> tuple[TrainConfig, dict]:
    """``(config, params)`` of a model in SAELens's layout, as saejax's family computes it.

    A JumpReLU threshold t becomes log_threshold = log(t); a threshold of 0 or less (SAELens then
    passes every positive pre-activation) becomes log of the smallest positive normal number of
    the dtype, which passes the same ones but those below 1e-38 (float32).

    Raises:
      SAELensError: an architecture saejax does not have, settings it cannot apply
        (normalize_activations, reshape_activations, apply_b_dec_to_input false, rescaled
        TopK activations), or tensors that do not fit cfg.json.
    """
    arch = cfg.get("architecture", "standard")
    if arch not in FROM_SAELENS:
        raise SAELensError(f"SAELens architecture {arch!r} has no saejax counterpart; saejax "
                           f"reads {', '.join(FROM_SAELENS)}.")
    unsupported = {k: cfg.get(k, v) for k, v in (("normalize_activations", "none"),
                                                  ("reshape_activations", "none"),
                                                  ("apply_b_dec_to_input", True),
                                                  ("rescale_acts_by_decoder_norm", False))
                   if cfg.get(k, v) != v}
    if unsupported:
        raise SAELensError(f"this SAELens model uses {unsupported}, which saejax does not "
                           "apply; fold them into the weights in SAELens first (for example "
                           "fold_W_dec_norm, fold_activation_norm_scaling_factor).")
    h, n = int(cfg["d_sae"]), int(cfg["d_in"])
    want = {"W_enc": (n, h), "b_enc": (h,), "W_dec": (h, n), "b_dec": (n,)}
    if arch == "jumprelu":
        want["threshold"] = (h,)
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != want:
        raise SAELensError(f"the weights hold tensors {got}, but cfg.json describes {want} "
                           f"({arch}, d_in {n}, d_sae {h}).")
    dtype = np.dtype(cfg.get("dtype", "float32"))
    if dtype not in (np.float32, np.float64):
        raise SAELensError(f"saejax computes in float32 or float64, not {dtype}; save the "
                           "SAELens model in float32 (sae.to(dtype=torch.float32)).")
    t = {k: np.asarray(v, dtype) for k, v in tensors.items()}
    params = {"W1": t["W_enc"].T.copy(), "b1": t["b_enc"], "W2": t["W_dec"].T.copy(),
              "b2": t["b_dec"]}
    ours = FROM_SAELENS[arch]
    if arch == "jumprelu":
        params["log_threshold"] = np.log(np.maximum(t["threshold"], np.finfo(dtype).tiny))
    # dataset "array": the data it encodes are the user's (saejax encode MODEL --data FILE)
    settings = {"arch": ours, "n_hidden": h, "dtype": str(dtype), "lam": 0.0,
                "dataset": "array"}
    if arch == "topk":
        settings["k"] = int(cfg["k"])
    return TrainConfig(**settings), params


def write(out: str | Path, tensors: dict, cfg: dict) -> Path:
    """out/sae_weights.safetensors (written whole or not at all), then out/cfg.json; an ``out``
    that holds either already is refused and left as it was."""
    out = Path(out)
    taken = [name for name in (WEIGHTS, CONFIG) if (out / name).exists()]
    if taken:
        raise SAELensError(f"{out} already holds {', '.join(taken)}; nothing was changed. "
                           "Choose another output directory.")
    if out.exists() and not out.is_dir():
        raise SAELensError(f"{out} is a file, not a directory: choose another output "
                           "directory.")
    out.mkdir(parents=True, exist_ok=True)
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        files.replace(out / WEIGHTS, lambda tmp: save_file(tensors, str(tmp)))
    except SafetensorError as err:
        raise files.RecordError(f"cannot write {out / WEIGHTS}: {err}. Nothing there was "
                                "changed; free some space or choose another directory.") from err
    files.write_json(out / CONFIG, cfg)
    return out


def read(path: str | Path) -> tuple[TrainConfig, dict]:
    """``(config, params)`` of a directory in SAELens's layout (``from_saelens``)."""
    path = Path(path)
    missing = [name for name in (WEIGHTS, CONFIG) if not (path / name).is_file()]
    if missing:
        raise SAELensError(f"{path} lacks {', '.join(missing)}: a SAELens model has both.")
    cfg = files.read_json(path / CONFIG)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise SAELensError(f"{path / WEIGHTS} cannot be read ({err}).") from err
    try:
        return from_saelens(cfg, tensors)
    except (KeyError, TypeError) as err:
        raise SAELensError(f"{path / CONFIG} is not a SAELens config saejax can read "
                           f"({type(err).__name__}: {err}).") from err
