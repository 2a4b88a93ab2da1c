"""The family's forward pass in NumPy, written from the papers' equations (the docstrings of
saejax/architectures/*) and independent of saejax: per-example loops and argsort where saejax
sorts and masks. The tests of the family compare saejax against it."""

from __future__ import annotations

import numpy as np


def as_numpy(params) -> dict:
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


def pre_activation(p, x):
    """pre = (x - b2) W1^T + b1."""
    return (np.asarray(x, np.float64) - p["b2"]) @ p["W1"].T + p["b1"]


def codes(p, x, arch, k=None):
    """The training codes f of ``arch`` (batchtopk: the batch's selection)."""
    pre = pre_activation(p, x)
    m, h = pre.shape
    f = np.zeros_like(pre)
    if arch == "relu-l1":
        f = np.maximum(pre, 0.0)
    elif arch == "topk":
        for i in range(m):
            top = np.argsort(-pre[i])[:k]  # the k largest of example i
            f[i, top] = np.maximum(pre[i, top], 0.0)
    elif arch == "batchtopk":
        flat = np.zeros(m * h)
        top = np.argsort(-pre.reshape(-1))[:k * m]  # the k m largest of the batch
        flat[top] = np.maximum(pre.reshape(-1)[top], 0.0)
        f = flat.reshape(m, h)
    elif arch == "jumprelu":
        theta = np.exp(p["log_threshold"])
        f = np.where(pre > theta, pre, 0.0)
    else:
        raise ValueError(arch)
    return f


def aux_codes(pre, dead, aux_k):
    """Each example's top aux_k dead latents, those with a positive pre-activation."""
    f_aux = np.zeros_like(pre)
    dead_idx = np.flatnonzero(dead)
    for i in range(pre.shape[0]):
        chosen = dead_idx[np.argsort(-pre[i, dead_idx])[:aux_k]]
        f_aux[i, chosen] = np.maximum(pre[i, chosen], 0.0)
    return f_aux


def forward(params, x, arch, lam, l1=0.0, k=None, l0=0.0, dead=None, aux_k=256,
            aux_coeff=1 / 32):
    """pre, f, x_hat, every term of J, J, rho_hat, mean_l0, fvu (and batchtopk's smallest kept
    pre-activation), in float64."""
    p = as_numpy(params)
    x = np.asarray(x, np.float64)
    m = x.shape[0]
    pre = pre_activation(p, x)
    f = codes(p, x, arch, k)
    x_hat = f @ p["W2"].T + p["b2"]
    out = {"pre": pre, "f": f, "x_hat": x_hat,
           "reconstruction": np.sum((x_hat - x) ** 2) / m,
           "weight_decay": 0.5 * lam * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))}
    if arch == "relu-l1":
        norms = np.sqrt(np.sum(p["W2"] ** 2, axis=0))
        out["sparsity"] = l1 * np.sum(f * norms) / m
    elif arch == "jumprelu":
        out["sparsity"] = l0 * np.count_nonzero(pre > np.exp(p["log_threshold"])) / m
    elif dead is not None and aux_coeff > 0 and np.any(dead):  # no dead latent: no aux loss
        f_aux = aux_codes(pre, np.asarray(dead, bool), aux_k)
        r = (x - x_hat) - f_aux @ p["W2"].T
        out["sparsity"] = aux_coeff * np.sum(r ** 2) / m
    else:
        out["sparsity"] = 0.0
    out["loss"] = out["reconstruction"] + out["weight_decay"] + out["sparsity"]
    out["rho_hat"] = np.mean(f > 0, axis=0)
    out["mean_l0"] = np.count_nonzero(f > 0) / m
    out["fvu"] = np.sum((x_hat - x) ** 2) / np.sum((x - x.mean(axis=0)) ** 2)
    if arch == "batchtopk":
        out["smallest_kept"] = np.min(pre[f > 0])
    return out

