"""The names of every choice that the config, the command line and validation share.

A leaf module: it imports nothing from saejax and no jax, so the command line can build its
parser (and ``--help``) without starting JAX. ``penalties.REGISTRY`` holds one entry per name in
``PENALTIES`` and checks at import that the two agree.
"""

PENALTIES = ("kl", "squared", "l1")  # sparsity penalties P(rho_hat); see saejax.penalties
DECODERS = ("sigmoid", "linear")  # output layers: a3 = s(z3), or a3 = z3
OPTIMIZERS = ("lbfgs", "adam", "sgd", "momentum")
SCHEDULES = ("constant", "cosine", "warmup_cosine")  # learning-rate schedules
GRADS = ("analytic", "autodiff")  # the gradient that drives training
DTYPES = ("float32", "float64")
DATASETS = ("patches", "mnist", "digits", "color-patches")
TERMS = ("loss", "reconstruction", "weight_decay", "sparsity")  # J and its three terms
