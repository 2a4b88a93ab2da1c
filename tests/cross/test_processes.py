"""Two processes sweep as one program over their devices, and only process 0 writes."""

import os
import subprocess

import numpy as np
import pytest
from helpers import sweep_cli


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "topk"])
def test_two_processes_sweep_as_one_and_only_process_0_writes(tmp_path, optimizer):
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), SAEJAX_CPU_DEVICES="2")
    one = subprocess.run(sweep_cli(tmp_path / "one", optimizer), env={**env,
                         "SAEJAX_CPU_DEVICES": "4"}, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    port = free_port()
    procs = [subprocess.Popen(
        sweep_cli(tmp_path / "two", optimizer, "--coordinator", f"127.0.0.1:{port}",
                  "--num-processes", "2", "--process-id", str(i)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert "on 4 device(s)" in outs[0][0]  # 2 processes x 2 devices, one program
    a = (tmp_path / "one" / "results.csv").read_text().splitlines()
    b = (tmp_path / "two" / "results.csv").read_text().splitlines()
    assert a[0] == b[0] and len(a) == len(b) == 7
    header = a[0].split(",")
    loss = axes = header.index("final_loss")  # the axes come first, then the results
    for ra, rb in zip(a[1:], b[1:], strict=True):
        fa, fb = ra.split(","), rb.split(",")
        assert fa[:axes] == fb[:axes]  # the same member in the same row
        np.testing.assert_allclose(float(fb[loss]), float(fa[loss]), rtol=1e-6)
    assert not list((tmp_path / "two").glob(".*.tmp"))


@pytest.mark.slow
def test_a_directory_process_0_refuses_stops_every_process_at_once(tmp_path):
    # process 0 alone claims the directory; when it is refused (here a file stands where the
    # sweep's directory would be), the other process stops too, with status 2 and a line that
    # names the directory, instead of waiting for process 0 in the sweep's first collective
    taken = tmp_path / "taken"
    taken.write_text("not a sweep")
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), SAEJAX_CPU_DEVICES="2")
    port = free_port()
    procs = [subprocess.Popen(
        sweep_cli(taken, "adam", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                  "--process-id", str(i)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [2, 2], outs
    assert "is a file, not a directory" in outs[0][1]
    assert f"process 0 could not claim {taken}" in outs[1][1]
    assert "Traceback" not in outs[0][1] + outs[1][1]
    assert taken.read_text() == "not a sweep"


@pytest.mark.slow
def test_a_block_too_large_for_one_process_stops_every_process_at_once(tmp_path):
    # each process checks its own devices' memory; when one host has too little (here process
    # 1, told it has 1 KiB), every process stops with status 2 before anything is written,
    # instead of the others waiting for it in the sweep's next collective
    script = ("import sys\nfrom saejax.runtime import memory\n"
              "if sys.argv[sys.argv.index('--process-id') + 1] == '1':\n"
              "    memory.available_bytes = lambda: 1024\n"
              "from saejax.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, SAEJAX_CACHE_DIR=str(tmp_path / "cache"), SAEJAX_CPU_DEVICES="2")
    port = free_port()
    argvs = [sweep_cli(tmp_path / "s", "adam", "--coordinator", f"127.0.0.1:{port}",
                       "--num-processes", "2", "--process-id", str(i)) for i in range(2)]
    procs = [subprocess.Popen([argv[0], "-c", script, *argv[3:]], env=env,  # not -m saejax.cli
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [2, 2], outs
    assert "but the device has 0.0 GiB" in outs[1][1]
    assert "does not fit in memory on process 1" in outs[0][1]
    assert "Traceback" not in outs[0][1] + outs[1][1]
    assert not (tmp_path / "s").exists()
