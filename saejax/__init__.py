"""saejax: the CS294A/UFLDL sparse autoencoder in JAX.

The public API, re-exported from the modules that define it:

- ``init_params``, ``forward``, ``encode``, ``decode``  (``saejax.model``)
- ``Hyper``, ``loss``, ``loss_terms``, ``reconstruction``, ``weight_decay``, ``sparsity``
  (``saejax.losses``)
- ``kl_divergence``, ``squared_penalty``, ``l1_penalty``, ``penalty_value``,
  ``penalty_derivative``, ``RHO_HAT_EPS``: each penalty beside its derivative
  (``saejax.penalties``)
- ``analytic_grad``, ``value_and_analytic_grad``, ``reconstruction_grad``,
  ``weight_decay_grad``, ``sparsity_grad``  (``saejax.grads``)
- ``numerical_grad``, ``relative_difference``  (``saejax.gradcheck``)
- ``sweep``, the vmapped, sharded hyperparameter sweep  (``saejax.sweeps``)
- ``codes(params, x, config)``: any architecture's codes as inference computes them
  (``saejax.train.final``)
- ``load``: ``(config, params)`` of a run, a sweep member or an export; ``export``: a model as
  weights.safetensors + cfg.json  (``saejax.records.models``)

- ``architectures``: relu-l1, topk, batchtopk and jumprelu, each with its loss and
  hand-written gradient (``terms``, ``terms_and_grad``, ``loss``, ``encode``)

Training lives in ``saejax.train`` (``run``, ``make_train_step``), data in ``saejax.data``.
"""

from saejax import architectures
from saejax.gradcheck import numerical_grad, relative_difference
from saejax.grads import (
    analytic_grad,
    reconstruction_grad,
    sparsity_grad,
    value_and_analytic_grad,
    weight_decay_grad,
)
from saejax.losses import (
    Hyper,
    hyper_of,
    loss,
    loss_terms,
    reconstruction,
    sparsity,
    weight_decay,
)
from saejax.model import decode, encode, forward, init_params, mean_activation
from saejax.penalties import (
    RHO_HAT_EPS,
    kl_divergence,
    l1_penalty,
    penalty_derivative,
    penalty_value,
    squared_penalty,
)
from saejax.records.models import export, load
from saejax.sweeps import sweep
from saejax.train.final import codes

__all__ = [
    "RHO_HAT_EPS",
    "Hyper",
    "analytic_grad",
    "architectures",
    "codes",
    "decode",
    "encode",
    "export",
    "forward",
    "hyper_of",
    "init_params",
    "kl_divergence",
    "l1_penalty",
    "load",
    "loss",
    "loss_terms",
    "mean_activation",
    "numerical_grad",
    "penalty_derivative",
    "penalty_value",
    "reconstruction",
    "reconstruction_grad",
    "relative_difference",
    "sparsity",
    "sparsity_grad",
    "squared_penalty",
    "sweep",
    "value_and_analytic_grad",
    "weight_decay",
    "weight_decay_grad",
]
