"""SLURM requeue inside a submitit job: checkpoint where training is, then let submitit requeue."""

import contextlib
import os
import signal
import threading
import time


@contextlib.contextmanager
def requeue_on_preemption():
    """Inside a submitit job: checkpoint where training is, then let submitit requeue the job.

    submitit's handler for its signal (USR2: `signal_delay_s` before the time limit, and at a
    preemption where SLURM is set to send it) pickles the job and requeues it, and the requeued job
    runs the same Hydra job, whose trainer resumes from checkpoints/last.pt. Alone, it would stop
    training mid-step and lose everything since the last periodic checkpoint. So its signal becomes
    the SIGTERM the trainer already handles (finish the step, checkpoint, SystemExit), and submitit
    requeues after that. A SIGTERM alone (preemption, scancel) checkpoints and exits; SLURM decides
    whether the job comes back (the slurm preset passes --requeue).
    """
    if "SUBMITIT_FOLDER" not in os.environ or threading.current_thread() is not threading.main_thread():
        yield
        return
    from submitit.core.job_environment import JobEnvironment

    usr = JobEnvironment._usr_sig()
    requeue = signal.getsignal(usr)  # submitit's checkpoint_and_try_requeue
    if not callable(requeue):
        yield
        return
    term_before = signal.getsignal(signal.SIGTERM)
    state = {"asked": False, "done": False}

    def do_requeue():
        if not state["done"]:
            state["done"] = True
            requeue(usr, None)  # exits (requeued), or raises UncompletedJobError (timed out too often)

    def on_usr(signum, frame):
        state["asked"] = True
        signal.raise_signal(signal.SIGTERM)  # the trainer's handler while it trains, on_term otherwise

    def on_term(signum, frame):  # runs only while the trainer's own handler is not installed
        if state["asked"]:
            do_requeue()
        elif callable(term_before):
            term_before(signum, frame)

    signal.signal(usr, on_usr)
    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except SystemExit:
        if not state["asked"]:
            # A preemption may send SIGTERM first and submitit's signal right after: wait a moment.
            for _ in range(30):
                if state["asked"]:
                    break
                time.sleep(0.1)
        if state["asked"]:
            do_requeue()
        raise
    finally:
        signal.signal(usr, requeue)
        signal.signal(signal.SIGTERM, term_before)
