"""saejax compiled for an H100 without one: XLA's GPU compiler, given the card's description,
builds the programs a GPU run would (jax's CUDA plugin, no GPU or driver needed), for reading
their optimized HLO and PTX on the CPU.

Needs:     jax's CUDA plugin of the installed jax's version and CUDA's ptxas, beside saejax
           (about 600 MB; not a dependency, and best kept out of the environment the tests run
           in): pip install jax-cuda12-plugin==V jax-cuda12-pjrt==V nvidia-cuda-nvcc-cu12, with
           V the version `python -c "import jax; print(jax.__version__)"` prints (CUDA 12:
           what was run; a machine whose GPU runs use CUDA 13 compiles with other tools); and
           JAX_PLATFORMS=cpu, which keeps the plugin from looking for a GPU. Used by
           experiments.bench.kernel_registers and the tests that read the GPU's programs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# One H100 SXM as XLA's GPU compiler sees it (stream_executor.GpuTargetConfigProto): NVIDIA's
# published figures for the card.
H100 = """
gpu_device_info {
  threads_per_block_limit: 1024  threads_per_warp: 32  threads_per_core_limit: 2048
  shared_memory_per_block: 49152  shared_memory_per_block_optin: 232448
  shared_memory_per_core: 233472  registers_per_core_limit: 65536
  registers_per_block_limit: 65536  core_count: 132  fpus_per_core: 128
  block_dim_limit_x: 2147483647  block_dim_limit_y: 65535  block_dim_limit_z: 65535
  memory_bandwidth: 3352320000000  l2_cache_size: 52428800  clock_rate_ghz: 1.98
  device_memory_size: 84942979072  cuda_compute_capability { major: 9 }
}
platform_name: "CUDA"
dnn_version_info { major: 9 }
device_description_str: "NVIDIA H100 80GB HBM3"
"""


def h100():
    """A compile-only H100 (raises where jax's CUDA plugin is not installed)."""
    from jax.experimental import topologies

    try:
        topology = topologies.get_topology_desc(platform="cuda", target_config=H100,
                                                topology="1x1x1")
    except NotImplementedError as error:
        raise ValueError("jax's CUDA plugin is not installed, or JAX_PLATFORMS is not cpu: "
                         "see experiments/bench/gpu_compile.py's Needs line.") from error
    return topology.devices[0]


def ptxas() -> Path:
    """CUDA's ptxas, from the nvidia-cuda-nvcc package XLA compiles with."""
    import nvidia.cuda_nvcc

    return Path(next(iter(nvidia.cuda_nvcc.__path__))) / "bin" / "ptxas"


# What a test that needs them says when it skips.
MISSING = ("jax's CUDA plugin and ptxas compile for a GPU here: see "
           "experiments/bench/gpu_compile.py's Needs line")


def available() -> bool:
    """Whether jax's CUDA plugin and ptxas are installed (the tests skip without them)."""
    for name in ("jax_plugins.xla_cuda12", "nvidia.cuda_nvcc"):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except ModuleNotFoundError:  # its parent package is absent
            return False
    return True
