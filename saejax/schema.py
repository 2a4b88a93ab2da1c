"""The allowed choices and the key lists that the config, the records and the figures share.

A leaf module: it imports nothing, so every module may depend on it. Every other list of these
names is derived from the ones here (``tests/cross/test_schema_rule.py`` fails if a copy
appears). ``penalties.REGISTRY`` holds
one entry per name in ``PENALTIES`` and checks at import that the two agree.
"""

# The sparse autoencoders: UFLDL's sigmoid network (the default) and the family trained on
# neural network activations today, each with a linear decoder (see saejax.architectures).
ARCHS = ("sigmoid", "relu-l1", "topk", "batchtopk", "jumprelu")
# Each architecture's sparsity knobs: the settings a sweep of it varies (a subset of HYPER).
KNOBS = {"sigmoid": ("rho", "beta"), "relu-l1": ("l1",), "topk": ("k",), "batchtopk": ("k",),
         "jumprelu": ("l0",)}
# The settings only some architectures read (the others would record them and do nothing).
OWN_SETTINGS = {"penalty": ("sigmoid",), "bandwidth": ("jumprelu",),
                "aux_k": ("topk", "batchtopk"), "aux_coeff": ("topk", "batchtopk"),
                "dead_window": ("topk", "batchtopk")}
# The params beyond W1, b1, W2, b2 of an architecture, with their shapes for H latents
# (``saejax.encode`` refuses params that hold one: their codes are not sigmoid(W1 x + b1)).
EXTRA_PARAMS = {"jumprelu": {"log_threshold": lambda h: (h,)},
                "batchtopk": {"threshold": lambda h: ()}}
# The architectures whose loss is continuous, so that L-BFGS's line search can work on it: top-k
# selection and thresholds make the others jump.
LBFGS_ARCHS = ("sigmoid", "relu-l1")
PENALTIES = ("kl", "squared", "l1")  # sparsity penalties P(rho_hat); see saejax.penalties
DECODERS = ("sigmoid", "linear")  # output layers: a3 = s(z3), or a3 = z3
OPTIMIZERS = ("lbfgs", "adam", "sgd", "momentum")
SCHEDULES = ("constant", "cosine", "warmup_cosine")  # learning-rate schedules
GRADS = ("analytic", "autodiff")  # the gradient that drives training
DTYPES = ("float32", "float64")
# How the L-BFGS memory keeps its pairs: in the params' dtype (minFunc's algorithm), or rounded
# to bfloat16 (half the bytes a float32 tick reads; saejax.optim.lbfgs.as_stored).
LBFGS_MEMORY_DTYPES = ("same", "bfloat16")
# How a sweep evaluates its sigmoid-network members at once (saejax.train.step.make_evaluate):
# each member vmapped over blocks of examples, each vmapped on all examples, or all members
# folded into wide products (saejax.folded).
MEMBER_EVALS = ("blocked", "whole", "folded", "kernel")
DATASETS = ("patches", "mnist", "digits", "color-patches", "array")  # array: a .npy/.npz file
# How a data set is normalized before training (and, the same way, before encoding): none,
# UFLDL's scaling into [0.1, 0.9], or per-feature standardization (saejax.data.normalize).
NORMALIZATIONS = ("none", "ufldl", "standardize")

# J and its three terms: what a loss evaluation returns (beside the vector rho_hat), what the
# gradient check can differentiate, and the curves of a run.
TERMS = ("loss", "reconstruction", "weight_decay", "sparsity")
# What a training step logs: J's terms as scalars, the rho_hat vector as its mean, and the batch's
# L0 (mean active latents per example) and fraction of variance unexplained (saejax.metrics).
SCALAR_TERMS = (*TERMS, "rho_hat_mean", "mean_l0", "fvu")
# The activation statistics of trained params (saejax.metrics.activation_stats), as scalars.
STATS = ("rho_hat_mean", "rho_hat_min", "rho_hat_max", "dead_fraction", "explained_variance",
         "mean_l0", "fvu", "shrinkage")
# What a finished run or member reports: J and its terms at the final params, then the stats.
# A run's summary.json holds them (with J as "final_loss"), a sweep's results.csv a column each.
RESULTS = ("final_loss", *TERMS[1:], *STATS)
# How well a model found the features of data made from a known dictionary
# (saejax.metrics.recovery): in a run's summary and a sweep's rows when the data has one.
RECOVERY = ("mcc", "recovered_fraction", "f1")
# How a run or member ended: iterations, evaluations of J and its gradient, and why it stopped.
COUNTS = ("iterations", "evaluations", "stop_reason")

# The traced hyperparameters of the loss (saejax.losses.Hyper): the sigmoid network's rho, beta
# and lam, then the family's knobs: relu-l1's L1 coefficient, topk's and batchtopk's k, and
# jumprelu's L0 coefficient. Each is a TrainConfig field of that name.
HYPER = ("rho", "beta", "lam", "l1", "k", "l0")
# The axes a sweep may vary; each is a TrainConfig field of that name.
AXES = (*HYPER, "lr", "seed")

# A language model's sites in a block (saejax.models.llama has each one's definition), the dtypes
# its weights may be held in, and the dtypes an activations cache may store.
LM_SITES = ("resid_pre", "attn_out", "mlp_in", "mlp_out", "resid_post")
LM_DTYPES = ("float32", "bfloat16")
CACHE_DTYPES = ("float32", "float16")
# A language-model autoencoder on held-out text (saejax.activations.splice): next-token losses
# clean, with the reconstruction spliced in and with the site zeroed, the fraction of loss
# recovered, and the code statistics of the held-out rows. A run's summary.json holds them under
# "lm_eval"; a sweep's rows, a column each.
LM_EVAL = ("clean_loss", "spliced_loss", "zero_ablation_loss", "loss_recovered",
           "heldout_explained_variance", "heldout_mean_l0", "heldout_dead_fraction")
