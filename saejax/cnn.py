"""The newer UFLDL tutorial's convolutional network (cnnTrain.m, cnnCost.m, minFuncSGD.m), with
its backward pass through pooling and convolution written by hand.

For B square images x (B, D, D), F filters Wc (F, k, k) with biases bc (F,), mean pooling over
p x p blocks and a softmax of K classes (Wd (K, F (D-k+1)^2 / p^2), bd (K,)):

    z_bfij = sum_uv x_b,i+u,j+v Wc_fuv + bc_f      convolve: "valid" cross-correlation,
                                                   as cnnConvolve's conv2 with the filter rotated
    a      = sigmoid(z)                            (B, F, C, C), C = D - k + 1
    h      = mean_pool(a, p), flattened            (B, F C^2 / p^2)
    J      = -(1/B) sum_b log softmax(Wd h_b + bd)_y_b

and backwards, with delta_d = (softmax - onehot(y)) / B:

    dWd = delta_d^T h      dbd = sum_b delta_d      delta_h = delta_d Wd
    delta_a = upsample(delta_h) / p^2              each pooled error spread over its block
    delta_z = delta_a a (1 - a)
    dWc_fuv = sum_bij delta_z_bfij x_b,i+u,j+v     the images cross-correlated with delta_z
    dbc_f   = sum_bij delta_z_bfij

``train_sgd`` is minFuncSGD: minibatches of a fresh permutation each epoch, momentum 0.5 for the
first iterations and then ``momentum``, velocity = mom velocity + alpha grad, theta -= velocity,
alpha halved after every epoch.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from saejax import differences as diff
from saejax.checks import check_count, check_rows
from saejax.softmax import check_labels

# minFuncSGD: momentum 0.5 until iteration MOMENTUM_INCREASE, then options.momentum
MOMENTUM_START, MOMENTUM_INCREASE = 0.5, 10


def convolve(images_BxDxD, filters_FxKxK):
    """The "valid" cross-correlation of every image with every filter: (B, F, D-k+1, D-k+1)."""
    return jax.lax.conv_general_dilated(
        images_BxDxD[:, None], filters_FxKxK[:, None], (1, 1), "VALID",
        dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST)


def convolve_channels(images_BxDxDxC, filters_FxKxKxC):
    """The "valid" cross-correlation of colour images with colour filters, summed over the
    channels: (B, F, D-k+1, D-k+1)."""
    return jax.lax.conv_general_dilated(
        images_BxDxDxC, filters_FxKxKxC, (1, 1), "VALID",
        dimension_numbers=("NHWC", "OHWI", "NCHW"), precision=jax.lax.Precision.HIGHEST)


def autoencoder_features(images_BxDxDxC, W1_HxN, b1_H, whiten_NxN, mean_N, pool: int):
    """The older tutorial's cnnConvolve and cnnPool: sigmoid(W1 T (x - mean) + b1) at every
    k x k patch x of each image (T the ZCA matrix, N = k k C, the patch flattened row-major
    over (k, k, C) as ``data.sample_patches`` flattens it), then the mean over disjoint
    pool x pool regions: (B, H, (D-k+1)/pool, (D-k+1)/pool).

    The whitening moves into the filters: W1 T (x - mean) = (W1 T) x - (W1 T) mean.
    """
    h, n = W1_HxN.shape
    channels = images_BxDxDxC.shape[-1]
    k = int(round((n // channels) ** 0.5))
    filters_HxN = W1_HxN @ whiten_NxN
    z = (convolve_channels(images_BxDxDxC, filters_HxN.reshape(h, k, k, channels))
         + (b1_H - filters_HxN @ mean_N)[None, :, None, None])
    return mean_pool(jax.nn.sigmoid(z), pool)


def mean_pool(a_BxFxCxC, pool: int):
    """Means over the disjoint pool x pool blocks of the last two axes (C a multiple of pool)."""
    b, f, c, _ = a_BxFxCxC.shape
    return a_BxFxCxC.reshape(b, f, c // pool, pool, c // pool, pool).mean(axis=(3, 5))


def init_params(key, image_dim: int = 28, filter_dim: int = 9, num_filters: int = 10,
                pool_dim: int = 2, num_classes: int = 10, dtype=jnp.float32) -> dict:
    """cnnInitParams: Wc ~ 0.1 N(0, 1); Wd ~ U(-r, r), r = sqrt(6 / (K + hidden + 1)); zero
    biases."""
    for name, value in (("image_dim", image_dim), ("filter_dim", filter_dim),
                        ("num_filters", num_filters), ("pool_dim", pool_dim),
                        ("num_classes", num_classes)):
        check_count(name, value, "positive_int")
    if filter_dim >= image_dim:
        raise ValueError(f"filter_dim {filter_dim} must be below image_dim {image_dim}: the "
                         "filter must fit inside the image with room to move (as cnnTrain's 9 "
                         "in 28). Pass a smaller filter_dim or larger images.")
    conv = image_dim - filter_dim + 1
    if conv % pool_dim:
        raise ValueError(f"pool_dim {pool_dim} must divide image_dim - filter_dim + 1 = {conv}, "
                         "the side of the convolved features: choose a pool_dim that divides it, "
                         "or another filter_dim.")
    hidden = (conv // pool_dim) ** 2 * num_filters
    r = np.sqrt(6.0) / np.sqrt(num_classes + hidden + 1)
    kc, kd = jax.random.split(key)
    return {"Wc": 0.1 * jax.random.normal(kc, (num_filters, filter_dim, filter_dim), dtype),
            "bc": jnp.zeros((num_filters,), dtype),
            "Wd": jax.random.uniform(kd, (num_classes, hidden), dtype, -r, r),
            "bd": jnp.zeros((num_classes,), dtype)}


def _forward(params, images, pool: int):
    z = convolve(images, params["Wc"]) + params["bc"][None, :, None, None]
    a = jax.nn.sigmoid(z)
    h = mean_pool(a, pool).reshape(images.shape[0], -1)
    logits = h @ params["Wd"].T + params["bd"][None, :]
    return a, h, logits


def loss(params, images_BxDxD, labels_B, pool: int = 2):
    """J: the mean cross-entropy of the softmax over the pooled features (no weight decay, as
    cnnCost)."""
    logits = _forward(params, images_BxDxD, pool)[2]
    log_p = jax.nn.log_softmax(logits, axis=1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels_B[:, None], axis=1))


def loss_and_grad(params, images_BxDxD, labels_B, pool: int = 2):
    """J and its hand-written gradient (the module docstring's equations; no jax.grad)."""
    b = images_BxDxD.shape[0]
    a, h, logits = _forward(params, images_BxDxD, pool)
    log_p = jax.nn.log_softmax(logits, axis=1)
    onehot = jax.nn.one_hot(labels_B, logits.shape[1], dtype=logits.dtype)
    cost = -jnp.sum(onehot * log_p) / b
    delta_d = (jnp.exp(log_p) - onehot) / b                          # B, K
    delta_h = (delta_d @ params["Wd"]).reshape(b, a.shape[1], a.shape[2] // pool, -1)
    delta_a = jnp.repeat(jnp.repeat(delta_h, pool, axis=2), pool, axis=3) / pool**2
    delta_z = delta_a * a * (1.0 - a)                                # B, F, C, C
    # dWc_fuv = sum_bij delta_z_bfij x_b,i+u,j+v: the images (batch as input channels) cross-
    # correlated with delta_z (batch as input channels, filters as outputs)
    dWc = jax.lax.conv_general_dilated(
        images_BxDxD[None], delta_z.transpose(1, 0, 2, 3), (1, 1), "VALID",
        dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST)[0]
    grads = {"Wc": dWc, "bc": jnp.sum(delta_z, axis=(0, 2, 3)),
             "Wd": delta_d.T @ h, "bd": jnp.sum(delta_d, axis=0)}
    return cost, grads


def _predict_impl(params, images, pool: int):
    return jnp.argmax(_forward(params, images, pool)[2], axis=1)


_predict = jax.jit(_predict_impl, static_argnames="pool")  # by call: mutmut reaches the body


def predict(params, images_BxDxD, pool: int = 2, batch: int = 2000) -> np.ndarray:
    """The most probable class of each image, in batches."""
    return np.concatenate([np.asarray(_predict(params, images_BxDxD[i:i + batch], pool))
                           for i in range(0, len(images_BxDxD), batch)])


def _epoch_impl(params, velocity, it0, images, labels, order, alpha, momentum, pool: int,
                minibatch: int):
    """One epoch of minFuncSGD: the minibatches of ``order`` in turn (a remainder is left out)."""
    steps = len(order) // minibatch
    batches = order[:steps * minibatch].reshape(steps, minibatch)

    def step(carry, idx):
        params, velocity, it = carry
        cost, g = loss_and_grad(params, images[idx], labels[idx], pool)
        mom = jnp.where(it + 1 >= MOMENTUM_INCREASE, momentum, MOMENTUM_START)
        velocity = jax.tree.map(lambda v, d: mom * v + alpha * d, velocity, g)
        params = jax.tree.map(lambda p, v: p - v, params, velocity)
        return (params, velocity, it + 1), cost

    (params, velocity, it), costs = jax.lax.scan(step, (params, velocity, it0), batches)
    return params, velocity, it, costs


# jit applied by call rather than as a decorator, so that the mutation run reaches the body
_epoch = jax.jit(_epoch_impl, static_argnames=("pool", "minibatch"), donate_argnums=(0, 1))


def _check_training_set(params, images_BxDxD, labels_B, pool: int):
    """The images (B, D, D) and labels (B,) as NumPy arrays, checked against the network:
    finite images whose side D gives the softmax's input width, one label in [0, K) each."""
    images = np.asarray(images_BxDxD)
    f, k = jnp.shape(params["Wc"])[:2]
    num_classes, hidden = jnp.shape(params["Wd"])
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be a stack of square images (B, D, D), got shape "
                         f"{images.shape}. Put a single image in a stack with image[None].")
    conv = images.shape[1] - k + 1
    if conv < 1 or conv % pool or (conv // pool) ** 2 * f != hidden:
        raise ValueError(f"images of {images.shape[1]}x{images.shape[1]} do not fit the network: "
                         f"its {f} filters of {k}x{k} pooled by {pool} must give the {hidden} "
                         "inputs of its softmax. Pass the image_dim the params were made for "
                         "(cnn.init_params), and the same pool_dim.")
    flat = images.reshape(images.shape[0], images.shape[1] * images.shape[2])
    check_rows(flat, "images")
    return images, check_labels(flat, labels_B, int(num_classes))[1]


def train_sgd(params, images_BxDxD, labels_B, epochs: int = 3, minibatch: int = 256,
              alpha: float = 0.1, momentum: float = 0.95, pool: int = 2, seed: int = 0):
    """minFuncSGD as cnnTrain runs it (3 epochs of minibatches of 256, alpha 0.1 halved after
    each epoch, momentum 0.95 from iteration 10). Returns (params, costs per iteration)."""
    pool = check_count("pool", pool, "positive_int")
    images, labels_B = _check_training_set(params, images_BxDxD, labels_B, pool)
    epochs = check_count("epochs", epochs, "positive_int")
    minibatch = check_count("minibatch", minibatch, "positive_int")
    if minibatch > len(images):
        raise ValueError(f"minibatch {minibatch} exceeds the {len(images)} images, so an epoch "
                         f"would train on nothing: pass a minibatch of at most {len(images)}, "
                         "or more images.")
    params = jax.tree.map(jnp.array, params)  # a copy: the epochs update it in place
    images = jnp.asarray(images, params["Wc"].dtype)
    labels = jnp.asarray(labels_B, jnp.int32)
    velocity = jax.tree.map(jnp.zeros_like, params)
    rng, it, costs = np.random.default_rng(seed), jnp.zeros((), jnp.int32), []
    for _ in range(epochs):
        order = jnp.asarray(rng.permutation(len(labels)), jnp.int32)
        params, velocity, it, c = _epoch(params, velocity, it, images, labels, order, alpha,
                                         momentum, pool, minibatch)
        costs.append(np.asarray(c))
        alpha = alpha / 2.0
    return params, np.concatenate(costs)


def problem(dtype=jnp.float64, seed: int = 0):
    """cnnTrain's debugging problem, smaller: 4 images of 12x12, 2 filters of 5x5, pooling 2,
    4 classes, non-zero biases."""
    k = jax.random.split(jax.random.key(seed), 5)
    params = init_params(k[0], 12, 5, 2, 2, 4, dtype)
    params["bc"] = 0.2 * jax.random.normal(k[1], (2,), dtype)
    params["bd"] = 0.1 * jax.random.normal(k[2], (4,), dtype)
    images = jax.random.uniform(k[3], (4, 12, 12), dtype)
    return params, images, jax.random.randint(k[4], (4,), 0, 4)


def check(params, images, labels, pool: int = 2, eps=None) -> dict:
    """The three-way check of ``loss_and_grad`` (``differences.three_way``)."""
    f = partial(loss, images_BxDxD=images, labels_B=labels, pool=pool)
    return diff.three_way(f, lambda p: loss_and_grad(p, images, labels, pool)[1], params, eps)
