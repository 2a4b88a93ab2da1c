"""The devices a sweep is sharded over; on a CPU host, one JAX device per core.

A sweep spreads its members over ``jax.devices()``. On a GPU or TPU host those are the
accelerators. On a CPU host JAX shows a single device by default; split the host into one
device per core and each core trains its own share of the members. ``saejax sweep`` does this
itself; in Python, call ``split_cpu()`` right after ``import jax``, before any computation:

    import jax
    from saejax.runtime import devices
    devices.split_cpu()          # one CPU device per core (a no-op on GPU/TPU-only use)

It sets ``jax_num_cpu_devices``, which JAX reads once, when its first computation starts its
backends. A standalone run uses one device either way and runs slower in a split process, so
split only processes that run sweeps (docs/benchmarks.md has the measurements).
"""

from __future__ import annotations

import os
import shutil

import jax

ENV = "SAEJAX_CPU_DEVICES"
XLA_FLAG = "xla_force_host_platform_device_count"


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_cpu(count: int | None = None) -> int:
    """Makes JAX show ``count`` CPU devices (default ``$SAEJAX_CPU_DEVICES``, else one per core).

    Returns the count in force. A count already chosen with ``XLA_FLAGS=--{XLA_FLAG}=N`` or
    ``jax_num_cpu_devices`` is kept. Raises ``RuntimeError`` when JAX has already started its
    backends (a computation ran before the call), saying where to call it instead.
    """
    if XLA_FLAG in os.environ.get("XLA_FLAGS", ""):
        return int(os.environ["XLA_FLAGS"].split(f"{XLA_FLAG}=")[1].split()[0])
    if jax.config.jax_num_cpu_devices > 0:
        return jax.config.jax_num_cpu_devices
    if count is None:
        count = int(os.environ.get(ENV, 0)) or cores()
    if count < 1:
        raise ValueError(f"a CPU device count must be at least 1, got {count}.")
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError as err:
        raise RuntimeError(
            "saejax.runtime.devices.split_cpu() must run before JAX's first computation (it starts the "
            "backends, which read the device count once): call it right after `import jax`, or "
            f"set XLA_FLAGS=--{XLA_FLAG}={count} before starting Python."
        ) from err
    return count


def join(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """Joins this process to a multi-process run (``jax.distributed.initialize``).

    All three given: process ``process_id`` of ``num_processes``, with process 0 listening at
    ``coordinator`` ("host:port"). None given: nothing happens (one process). On CPU the
    processes exchange through gloo collectives. Returns whether it joined.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given):
        return False
    if not all(given):
        raise ValueError("several processes need all of --coordinator HOST:PORT, "
                         "--num-processes N and --process-id I.")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must lie in 0..{num_processes - 1}, got {process_id}.")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
    return True


def gpu_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver (its /proc entry, or nvidia-smi on the PATH),
    whatever JAX runs on."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def platform_line() -> str:
    """What JAX computes on, in one line: "JAX 0.11.2 on gpu: 1 device (NVIDIA H200)"."""
    found = jax.devices()
    kinds = ", ".join(sorted({d.device_kind for d in found}))
    hosts = f" over {jax.process_count()} processes" if jax.process_count() > 1 else ""
    return (f"JAX {jax.__version__} on {jax.default_backend()}: {len(found)} "
            f"device{'s' if len(found) > 1 else ''} ({kinds}){hosts}")


def unused_gpu_warning(driver: bool | None = None) -> str | None:
    """A warning when an NVIDIA driver is present (``driver``, default: looked up) but JAX runs
    on the CPU, as it does when the installed jaxlib has no CUDA plugin; else None."""
    driver = gpu_driver_present() if driver is None else driver
    if not driver or jax.default_backend() != "cpu":
        return None
    return ("warning: this machine has an NVIDIA driver, but JAX runs on the CPU (the installed "
            "JAX has no CUDA plugin). For the GPU: pip install -U 'jax[cuda13]' (or "
            "'jax[cuda12]', as the driver allows), then check that this line says gpu.")


def announce() -> None:
    """Prints ``platform_line()`` and, to stderr, ``unused_gpu_warning()`` if there is one: what
    ``saejax train`` and ``sweep`` say first."""
    import sys

    print(platform_line(), flush=True)
    warning = unused_gpu_warning()
    if warning:
        print(warning, file=sys.stderr, flush=True)
