"""`hydra.callbacks.sweep`: the ledger and summary of a multirun, its exit code, and GPU pinning."""

import atexit
import contextlib
import os
import warnings
from pathlib import Path

from hydra.experimental.callback import Callback

from gan_bench.sweep.gpus import pin_gpu, release_gpu, warn_once
from gan_bench.sweep.ledger import in_multirun, start_ledger
from gan_bench.sweep.summary import report

# conf/hydra/launcher/joblib.yaml shares its name with the plugin's own config, so Hydra checks it
# against the plugin's schema (which we want: a typo is an error) and warns, once per job, that
# this matching is deprecated. The file lists every key, so it also works where a later Hydra
# drops the matching; the warning asks nothing of the user.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore")


class SweepCallback(Callback):
    """gpus: null (off), `auto` (every visible GPU), N (the first N) or device ids, one per slot
    (`[0,0,1,1]`: two jobs per GPU). Each job of a launcher that runs jobs in their own processes
    (joblib) waits for a free slot and sees only its GPU (CUDA_VISIBLE_DEVICES). Set
    hydra.launcher.n_jobs to the number of slots: extra workers only wait.

    When the multirun ends with a failed job, the process exits with code 1 (SystemExit): Hydra
    gives a multirun no return value, so this is how `gan-bench train -m` returns it.
    """

    def __init__(self, gpus=None) -> None:
        self.gpus = gpus
        self._main_pid: int | None = None
        self._open = None  # the config of a multirun that started and has not ended

    def on_multirun_start(self, config, **kwargs) -> None:
        self._main_pid = os.getpid()
        start_ledger(config.hydra.sweep.dir)
        if self._open is None:
            atexit.register(self._stopped)
        self._open = config

    def on_multirun_end(self, config, **kwargs) -> None:
        self._open = None
        code = report(config)
        if code:
            raise SystemExit(code)

    def _stopped(self) -> None:
        # The sweep ended without on_multirun_end: an interrupt, or a launcher that gave up (a joblib
        # worker that died, a SLURM job that ended without a result). Say what is done and how to go on.
        if self._open is not None and os.getpid() == self._main_pid:
            with contextlib.suppress(Exception):
                report(self._open, finished=False)

    def on_job_start(self, config, **kwargs) -> None:
        if self.gpus is None or not in_multirun():
            return
        if os.getpid() == self._main_pid:
            warn_once("hydra.callbacks.sweep.gpus is set, but this launcher runs jobs in the main "
                      "process: no GPU pinning (use hydra/launcher=joblib)")
            return
        pin_gpu(self.gpus, Path(str(config.hydra.sweep.dir)))

    def on_job_end(self, config, job_return, **kwargs) -> None:
        release_gpu()
