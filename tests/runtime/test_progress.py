"""runtime.progress: the progress bar says where a run stands (or nothing when off), and the
imports started in the background finish and leave their modules imported."""

import logging
import sys

from saejax.runtime import progress


def test_a_disabled_bar_is_silent(capsys):
    bar = progress.progress_bar(10, 0, enabled=False)
    bar.update(5)
    bar.close()
    assert capsys.readouterr() == ("", "")


def test_an_enabled_bar_counts_from_where_the_run_stands(capsys):
    bar = progress.progress_bar(10, 4, enabled=True)  # a run resumed at step 4
    bar.update(6)
    bar.close()
    err = capsys.readouterr().err
    assert "10/10" in err and "step" in err


def test_prefetch_imports_finishes_and_leaves_its_modules_imported():
    thread = progress.prefetch_imports()
    thread.join(timeout=120)
    assert not thread.is_alive() and thread.daemon
    assert "orbax.checkpoint" in sys.modules and "saejax.viz" in sys.modules


def test_a_failed_background_import_is_logged_not_raised(monkeypatch, caplog):
    class Broken:
        @staticmethod
        def import_module(name):
            raise ImportError(f"no {name} here")

    monkeypatch.setattr(progress, "importlib", Broken)
    with caplog.at_level(logging.DEBUG, logger=progress.__name__):
        thread = progress.prefetch_imports()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert "background import failed" in caplog.text
