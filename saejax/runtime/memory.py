"""Whether a run or a sweep block fits in memory, estimated before anything is allocated or
written, so that ``--n-hidden 10000000`` is refused with a clear error instead of failing
deep inside XLA (or the system's out-of-memory killer).

The estimate counts, per member: the params P = H N (twice when untied) + H + N, the
optimizer's state (L-BFGS: its 2 x memory rows of P, and the half-dozen vectors of P it keeps;
a minibatch optimizer: gradients and moments, 4 P), the activations of one evaluation block
(its rows x (4 H + 2 N)) and the metrics rows of one compiled call (``ROW_VALUES`` per step of
min(steps, steps_per_call)); then the data, once. A bfloat16 L-BFGS memory keeps its rows at 2
bytes a value; off a GPU, where XLA widens it into float32 copies as a tick reads it, those
copies count too. It is a lower bound of the real need, so a run
it refuses cannot fit; one it accepts may still be near the limit.
"""

from __future__ import annotations

import os

FULL_BATCH_BLOCK = 2048  # rows per pass of a full-batch evaluation (train.step's blocks)
ROW_VALUES = 16  # values a step logs (J, its terms, rho_hat_mean, grad_norm, ...), at most


def estimate_bytes(config, m: int, n_visible: int, members: int = 1,
                   platform: str | None = None) -> int:
    """Bytes that training ``members`` networks of ``config`` on (m, n_visible) data holds, on
    ``platform`` (default: JAX's default backend's)."""
    h = config.n_hidden
    itemsize = 8 if config.dtype == "float64" else 4
    params = h * n_visible * (1 if config.tied else 2) + h + n_visible
    pair = 1  # an L-BFGS memory row's value, in params values
    if config.lbfgs_memory_dtype == "bfloat16":
        pair = 2 / itemsize + (0 if (platform or _backend()) == "gpu" else 4 / itemsize)
    state = ((2 * config.lbfgs_memory * pair + 6) * params if config.optimizer == "lbfgs"
             else 4 * params)
    rows = min(m, config.batch_size or FULL_BATCH_BLOCK)
    activations = rows * (4 * h + 2 * n_visible)
    logged = ROW_VALUES * min(config.steps, config.steps_per_call)
    return int(itemsize * (members * (params + state + activations + logged) + m * n_visible))


def _backend() -> str:
    import jax

    return jax.default_backend()


def available_bytes() -> int | None:
    """The memory of this process's first device: an accelerator's own limit when it reports
    one, else the host's physical memory; None when neither is known. Only this process's
    device is asked: asking process 0's from another process left a two-process sweep's
    collectives timing out (tests/cross/test_processes.py)."""
    import jax

    stats = getattr(jax.local_devices()[0], "memory_stats", lambda: None)()
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(config, m: int, n_visible: int, members: int = 1) -> None:
    """Raises ValueError when the estimate exceeds the device's memory, naming the sizes."""
    need, have = estimate_bytes(config, m, n_visible, members), available_bytes()
    if have is not None and need > have:
        who = f"{members} members of " if members > 1 else ""
        raise ValueError(
            f"{who}{n_visible}-{config.n_hidden}-{n_visible} on {m} examples needs at least "
            f"{need / 2**30:.1f} GiB ({config.optimizer}, {config.dtype}), but the device has "
            f"{have / 2**30:.1f} GiB. Choose a smaller n_hidden"
            + (", fewer members at once (chunk_size)" if members > 1 else "")
            + (", a smaller lbfgs_memory" if config.optimizer == "lbfgs" else
               ", a smaller batch_size") + ".")
