"""One run's worker: a run that fails is recorded failed; one that Ctrl-C interrupted is not."""

from __future__ import annotations

import os
import signal

import pytest

from ablate.config import RunConfig
from ablate.experiment.store import FAILED
from ablate.experiment.worker import RunSpec, execute


def _spec() -> RunSpec:
    return RunSpec(run_id="r", experiment="e", variant="", label="base", config=RunConfig.__new__(RunConfig))


def _lightning_like_teardown_error(*args, **kwargs):
    """What Lightning can do with a Ctrl-C that lands mid-teardown: swallow it, then fail on something else."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        pass
    raise RuntimeError("Please call `iter(combined_loader)` first.")


def test_an_error_after_ctrl_c_is_an_interrupt_not_a_failed_run(tmp_path):
    import ablate.train.fit as fit_module

    mp = pytest.MonkeyPatch()
    mp.setattr(fit_module, "fit", _lightning_like_teardown_error)
    try:
        with pytest.raises(KeyboardInterrupt):
            execute(_spec(), tmp_path)
    finally:
        mp.undo()
    assert not (tmp_path / "traceback.txt").exists()  # nothing recorded as if the run had failed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_the_same_error_without_ctrl_c_fails_the_run(tmp_path):
    import ablate.train.fit as fit_module

    def broken(*args, **kwargs):
        raise RuntimeError("Please call `iter(combined_loader)` first.")

    mp = pytest.MonkeyPatch()
    mp.setattr(fit_module, "fit", broken)
    try:
        out = execute(_spec(), tmp_path)
    finally:
        mp.undo()
    assert out["status"] == FAILED and "iter(combined_loader)" in out["error"]
    assert (tmp_path / "traceback.txt").exists()
