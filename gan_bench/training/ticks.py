"""The log tick. Every step leaves its numbers on the device (no host sync inside a step); every
`train.log_every` steps, and at the last, one copy to the host finds the replicas whose losses
turned non-finite and logs the averages of the others: losses, D(x), D(G(z)), gradient norms,
steps/s and the loss family's diagnostics, to TensorBoard and the progress bar."""

import time

import torch

from gan_bench.logger import Logger

COLUMNS = ("loss/d", "loss/g", "D/real", "D/fake")  # what each step records, per replica


class Ticks:
    def __init__(self, every: int, K: int, device: torch.device, step: int, steps: int, log: Logger,
                 progress: bool):
        self.history = torch.zeros(int(every), len(COLUMNS), K, device=device)
        self.every, self.last, self.log = int(every), 0, log
        # History row i holds the step with step % every == i. A run resumed off the log grid (a
        # SIGTERM checkpoint) starts its first interval at row `first`; the rows before it are empty.
        self.first = step % self.every
        self.t_tick, self.step_tick = time.perf_counter(), step
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=steps, initial=step, unit="step", dynamic_ncols=True)

    def record(self, step: int, d_loss, g_loss, real_logits, gen_logits) -> None:
        """One step's numbers, before `step` is counted: [K] each."""
        i = self.last = step % self.every
        h = self.history
        h[i, 0], h[i, 1] = d_loss.detach(), g_loss.detach()
        h[i, 2], h[i, 3] = torch.sigmoid(real_logits.detach()).mean(-1), torch.sigmoid(gen_logits.detach()).mean(-1)

    def tick(self, run, nets, fake: torch.Tensor, loss, gen_logits: torch.Tensor, penalty=None) -> list[int]:
        """Log the interval that ends at run.step; the replicas that diverged in it, recorded in run.
        `penalty`: this step's penalty (its weight moves under penalty.schedule), or None."""
        K, n = run.active.numel(), self.last + 1 - self.first  # n steps in this interval
        # D's gradients are still those of its last step: the G step runs D with requires_grad off.
        d_grad = grad_norm(nets.D, run.active if K > 1 else None)
        rows = self.history[self.first:self.last + 1].cpu()  # [n, columns, K]
        self.first = 0
        nonfinite = ~torch.isfinite(rows[:, :2]).all(1) & run.active.cpu()  # [n, K]: a loss turned NaN/inf
        newly = [k for k in range(K) if nonfinite[:, k].any()]
        for k in newly:
            run.diverge(k, run.step - n + int(nonfinite[:, k].nonzero()[0]) + 1)
        training = run.active.cpu()  # the scalars average the replicas still training
        now = time.perf_counter()
        if training.any():
            on_device = training.to(run.active.device)
            select = on_device if K > 1 else None
            scalars = {name: rows[:, j, training].mean().item() for j, name in enumerate(COLUMNS)}
            scalars.update({"grad_norm/d": d_grad, "grad_norm/g": grad_norm(nets.G, select),
                            "grad_norm/g_samples": sample_grad_norm(fake, select),
                            "speed/steps_per_s": (run.step - self.step_tick) / max(now - self.t_tick, 1e-9)})
            scalars.update(diagnostics(loss, gen_logits.detach()[on_device]))
            scalars.update(schedule_scalars(run, penalty))
            self.log.scalars(run.step, scalars)
            if self.bar is not None:
                self.bar.update(run.step - self.bar.n)
                self.bar.set_postfix(d=f"{scalars['loss/d']:.3f}", g=f"{scalars['loss/g']:.3f}",
                                     **_short(run.replicas[0]["metrics"]))
        self.t_tick, self.step_tick = now, run.step
        return newly

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def schedule_scalars(run, penalty) -> dict:
    """What the step trained with, where a schedule may move it (optim.schedule, penalty.schedule):
    each player's learning rate and Adam beta2 as the optimizer holds them, and the penalty's weight."""
    out = {}
    for who in ("d", "g"):
        opt = getattr(run, f"opt_{who}", None)
        group = opt.param_groups[0] if opt is not None and opt.param_groups else {}
        if "lr" in group:
            out[f"optim/lr_{who}"] = float(group["lr"])
        if isinstance(group.get("betas"), (tuple, list)):
            out[f"optim/beta2_{who}"] = float(group["betas"][1])
    if penalty is not None and isinstance(getattr(penalty, "weight", None), (int, float)):
        out["penalty/weight"] = float(penalty.weight)
    return out


def grad_norm(module, select=None) -> float:
    """Gradient norm over all parameters; `select` [K] picks replicas of a batched model (the
    frozen ones may hold NaN): dim 0 of every parameter is K blocks, one per replica."""
    norms = [(p.grad if select is None else p.grad.unflatten(0, (len(select), -1))[select]).norm()
             for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def sample_grad_norm(fake, select=None) -> float:
    # dLoss/dx per generated sample, times B to undo the batch mean: the per-sample signal G gets.
    g = fake.grad if select is None else fake.grad[select]
    return (g.flatten(2).norm(dim=2).mean() * fake.shape[1]).item()


def diagnostics(loss, fake_logits) -> dict:
    from gan_bench.losses import divergence_estimates, saturation_fraction

    # Averaged over replicas: per-replica curves belong in metrics.jsonl, not in 200 TB tags.
    out = {"diag/saturation": float(saturation_fraction(fake_logits).mean())}
    if loss.logit_scale is not None:
        est = divergence_estimates(fake_logits, loss.logit_scale)
        out.update({f"diag/{k}": float(v.mean()) for k, v in est.items()})
    return out


def _short(metrics: dict) -> dict:
    keep = ("modes", "hq", "fid")
    return {k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in metrics.items() if k in keep}
