"""runtime.devices: one JAX device per CPU core, set before JAX starts its backends."""

import os
import subprocess
import sys

import pytest


def run(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "SAEJAX_CPU_DEVICES")}
    environ.update(env, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_split_cpu_sets_the_device_count_before_jax_starts():
    out = run("import jax; from saejax.runtime import devices; print(devices.split_cpu(3), "
              "jax.device_count())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3"]


@pytest.mark.parametrize("env, expected", [({"SAEJAX_CPU_DEVICES": "2"}, "2"),
                                           ({"XLA_FLAGS": "--xla_force_host_platform_device_count=5"}, "5")])
def test_a_count_chosen_outside_is_kept(env, expected):
    out = run("import jax; from saejax.runtime import devices; print(devices.split_cpu(), "
              "jax.device_count())", **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, expected]


def test_default_is_one_device_per_core():
    out = run("import os, jax; from saejax.runtime import devices; devices.split_cpu(); "
              "print(jax.device_count(), len(os.sched_getaffinity(0)))")
    assert out.returncode == 0, out.stderr
    count, cores = out.stdout.split()
    assert count == cores


def test_too_late_says_where_to_call_it():
    out = run("import jax, jax.numpy as jnp; from saejax.runtime import devices; jnp.ones(2).sum(); "
              "devices.split_cpu(2)")
    assert out.returncode != 0
    assert "right after `import jax`" in out.stderr
    assert "xla_force_host_platform_device_count=2" in out.stderr


def test_the_platform_line_names_jax_the_backend_and_the_devices():
    import jax

    from saejax.runtime import devices

    line = devices.platform_line()
    assert line.startswith(f"JAX {jax.__version__} on {jax.default_backend()}: ")
    assert f"{len(jax.devices())} device" in line and jax.devices()[0].device_kind in line


def test_a_gpu_driver_beside_a_cpu_jax_gets_a_warning_with_the_install_line():
    import jax

    from saejax.runtime import devices

    assert jax.default_backend() == "cpu"  # the test machines have no accelerator
    warning = devices.unused_gpu_warning(driver=True)
    assert "NVIDIA driver" in warning and "runs on the CPU" in warning
    assert "pip install -U 'jax[cuda13]'" in warning
    assert devices.unused_gpu_warning(driver=False) is None
