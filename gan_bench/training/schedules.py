"""What moves with the step, decided outside the loop: the loss's α schedule, the optimizers'
learning rates and Adam β2 (optim.schedule), the penalty's weight (penalty.schedule) and which D steps
are penalized at all (penalty.every, lazy regularization). Each is a pure function of the step, so a
resumed run is bit-identical to one never interrupted."""


from gan_bench.errors import UserError


class StepSchedules:
    def __init__(self, loss_fn, penalty, optim_schedule, opt_g, opt_d, steps: int, n_critic: int):
        self.loss_fn, self.penalty, self.optim_schedule = loss_fn, penalty, optim_schedule
        self.opt_g, self.opt_d, self.steps, self.n_critic = opt_g, opt_d, steps, n_critic
        self._pen = None
        cosines = {"penalty.schedule": getattr(penalty, "schedule", None)}
        if optim_schedule is not None:
            cosines["optim.schedule"] = next(c for c in (optim_schedule.lr_d, optim_schedule.beta2) if c is not None)
        for key, c in cosines.items():
            if c is not None and c.steps > steps:  # a burn-in the run never finishes: a mistake, said now
                raise UserError(f"{key}.steps={c.steps} is longer than the run ({steps} steps): its cosine would "
                                f"never reach its end; set {key}.steps <= {steps} (R3GAN's burn-in: 20% of the run)")

    def at(self, step: int):
        """This generator step's loss, with its rates and β2 set in the optimizers in place."""
        if self.optim_schedule is not None:
            self.optim_schedule.apply(step, self.opt_g, self.opt_d)
        self._pen = self.penalty.at_step(step) if self.penalty is not None else None
        return self.loss_fn.at_step(step, self.steps)

    @property
    def step_penalty(self):
        """The penalty of this generator step, before lazy regularization (what the log shows)."""
        return self._pen

    def penalty_for(self, step: int, critic: int):
        """The penalty of D step `critic` of generator step `step`, or None where a lazy penalty
        skips it (D steps count across generator steps: step * n_critic + critic)."""
        return None if self._pen is None else self._pen.lazy(step * self.n_critic + critic)
