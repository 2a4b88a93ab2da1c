"""The allowed choices and the key lists that the config, the records and the figures share.

A leaf module: it imports nothing, so every module may depend on it. Every other list of these
names is derived from the ones here (``tests/cross/test_schema_rule.py`` fails if a copy
appears). ``penalties.REGISTRY`` holds
one entry per name in ``PENALTIES`` and checks at import that the two agree.
"""

PENALTIES = ("kl", "squared", "l1")  # sparsity penalties P(rho_hat); see saejax.penalties
DECODERS = ("sigmoid", "linear")  # output layers: a3 = s(z3), or a3 = z3
OPTIMIZERS = ("lbfgs", "adam", "sgd", "momentum")
SCHEDULES = ("constant", "cosine", "warmup_cosine")  # learning-rate schedules
GRADS = ("analytic", "autodiff")  # the gradient that drives training
DTYPES = ("float32", "float64")
DATASETS = ("patches", "mnist", "digits", "color-patches")

# J and its three terms: what a loss evaluation returns (beside the vector rho_hat), what the
# gradient check can differentiate, and the curves of a run.
TERMS = ("loss", "reconstruction", "weight_decay", "sparsity")
# J's terms as scalars, as a training step logs them: the rho_hat vector becomes its mean.
SCALAR_TERMS = (*TERMS, "rho_hat_mean")
# The activation statistics of trained params (saejax.metrics.activation_stats), as scalars.
STATS = ("rho_hat_mean", "rho_hat_min", "rho_hat_max", "dead_fraction", "explained_variance")
# What a finished run or member reports: J and its terms at the final params, then the stats.
# A run's summary.json holds them (with J as "final_loss"), a sweep's results.csv a column each.
RESULTS = ("final_loss", *TERMS[1:], *STATS)
# How a run or member ended: iterations, evaluations of J and its gradient, and why it stopped.
COUNTS = ("iterations", "evaluations", "stop_reason")

# The axes a sweep may vary; each is a TrainConfig field of that name.
AXES = ("rho", "beta", "lam", "lr", "seed")
