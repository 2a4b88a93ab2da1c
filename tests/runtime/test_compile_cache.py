"""runtime.compile_cache: where compiled programs are cached on disk, and the in-process cache
of program factories, counted call by call."""

from pathlib import Path

import jax
import pytest

from saejax.runtime import compile_cache


def test_the_directory_follows_saejax_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SAEJAX_CACHE_DIR", raising=False)
    assert compile_cache.directory() == Path.home() / ".cache" / "saejax" / "xla"
    monkeypatch.setenv("SAEJAX_CACHE_DIR", str(tmp_path / "xla"))
    assert compile_cache.directory() == tmp_path / "xla"


@pytest.mark.parametrize("value", ["off", "OFF", " Off ", "0", "none", ""])
def test_off_turns_the_disk_cache_off(monkeypatch, value):
    monkeypatch.setenv("SAEJAX_CACHE_DIR", value)
    assert compile_cache.directory() is None


def test_a_configured_cache_directory_is_left_as_it_is(monkeypatch):
    configured = compile_cache.enable()  # the session's own (tests/conftest.py)
    assert configured is not None
    monkeypatch.setenv("SAEJAX_CACHE_DIR", "off")  # asked off now: the configured one stays
    assert compile_cache.enable() == configured
    assert jax.config.jax_compilation_cache_dir == str(configured)


def test_program_cache_builds_once_per_program_until_cleared(monkeypatch):
    monkeypatch.setattr(compile_cache, "_PROGRAM_CACHES", [])  # leave the session's programs be
    built = []

    def build(program, width):
        built.append((program, width))
        return object()

    cached = compile_cache.program_cache(build)
    first = cached("adam-4", 16)
    assert cached("adam-4", 16) is first and built == [("adam-4", 16)]
    assert cached("adam-4", 32) is not first  # another program: built
    assert cached("lbfgs-4", 16) is not first
    assert len(built) == 3
    compile_cache.clear_program_cache()
    again = cached("adam-4", 16)
    assert again is not first and len(built) == 4  # forgotten: built afresh
    assert cached("adam-4", 16) is again
