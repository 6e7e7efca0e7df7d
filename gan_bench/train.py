"""The trainer: `train(cfg) -> dict`, one function read top to bottom.

Every random draw of a run comes from explicit generators seeded from `seed` (initialization, data
order, latents, penalties), so a run is a function of its config, a checkpoint holds its whole
state, and an ensemble replica can reproduce a single run exactly.
"""

import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gan_bench import checkpoint
from gan_bench.config import check_config, hashed_config
from gan_bench.errors import UserError
from gan_bench.logger import Logger
from gan_bench.metrics import make_evaluator

# Independent random streams of one run, derived from its seed.
STREAMS = {"data": 1, "latent": 2, "penalty": 3}


def stream_seed(seed: int, stream: str) -> int:
    return int(np.random.SeedSequence([seed, STREAMS[stream]]).generate_state(1)[0])


def build(node, **kwargs):
    """hydra.utils.instantiate, but a UserError raised inside a constructor stays a UserError."""
    try:
        return instantiate(node, **kwargs)
    except Exception as e:
        cause = e
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or e) from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available: use train.device=cpu or train.device=auto")
    return torch.device(name)


def train(cfg: DictConfig) -> dict:
    # ---------------------------------------------------------------- initialize
    check_config(cfg)
    tc = cfg.train
    run_dir = Path(cfg.paths.run_dir)
    result_path, ckpt_path = run_dir / "result.json", run_dir / "checkpoints" / "last.pt"
    if result_path.exists():
        done = json.loads(result_path.read_text())
        if done.get("status") in ("completed", "diverged") and done.get("steps") == tc.steps:
            done["skipped"] = True  # a finished run is never retrained
            return done
    device = pick_device(tc.device)
    if tc.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    cfg_hash = checkpoint.config_hash(hashed_config(cfg))
    state = checkpoint.load(ckpt_path, cfg_hash) if ckpt_path.exists() else None

    # ---------------------------------------------------------------- data
    data = build(cfg.dataset)
    x_train = data.train.to(device)  # moved once; batches are gathered on the device
    n_train, batch = len(x_train), int(tc.batch_size)
    g_data = torch.Generator().manual_seed(stream_seed(cfg.seed, "data"))

    # ---------------------------------------------------------------- networks and objective
    torch.manual_seed(cfg.seed)  # PyTorch's default init, drawn from the run seed (G, then D)
    G = build(cfg.model.generator).to(device)
    D = build(cfg.model.discriminator).to(device)
    loss_fn = build(cfg.loss)
    penalty = build(cfg.penalty)
    z_dim = int(cfg.model.latent_dim)
    g_z = torch.Generator(device).manual_seed(stream_seed(cfg.seed, "latent"))
    g_pen = torch.Generator(device).manual_seed(stream_seed(cfg.seed, "penalty"))
    betas = tuple(cfg.optim.betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.lr_g, betas=betas, eps=cfg.optim.eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.lr_d, betas=betas, eps=cfg.optim.eps)
    evaluator = make_evaluator(data, cfg.eval)
    # Fixed test latents, identical across runs and untouched by the training streams.
    z_eval = torch.randn(int(cfg.eval.n_samples), z_dim,
                         generator=torch.Generator().manual_seed(cfg.eval.latent_seed)).to(device)

    # ---------------------------------------------------------------- resume
    step, perm, pos, wall_before = 0, None, n_train, 0.0
    if state is not None:
        G.load_state_dict(state["G"]); D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"]); opt_d.load_state_dict(state["opt_d"])
        for name, g in (("data", g_data), ("latent", g_z), ("penalty", g_pen)):
            g.set_state(state["rng"][name])
        step, pos, wall_before = state["step"], state["pos"], state["wall_seconds"]
        perm = state["perm"].to(device) if state["perm"] is not None else None

    def save_checkpoint():
        checkpoint.save(ckpt_path, {
            "config_hash": cfg_hash, "step": step, "pos": pos, "wall_seconds": wall(),
            "perm": None if perm is None else perm.cpu(),
            "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": {"data": g_data.get_state(), "latent": g_z.get_state(), "penalty": g_pen.get_state()},
        })

    def next_batch():
        # Shuffled epochs over the fixed training set; the last batch of an epoch may be short,
        # as with a DataLoader(shuffle=True).
        nonlocal perm, pos
        if pos >= n_train:
            perm, pos = torch.randperm(n_train, generator=g_data).to(device), 0
        idx = perm[pos:pos + batch]
        pos += len(idx)
        return x_train[idx]

    @torch.no_grad()
    def evaluate():
        G.eval()
        samples = torch.cat([G(z) for z in z_eval.split(4096)])
        G.train()
        metrics, picture = evaluator(samples)
        log.metrics(step, metrics)
        log.image(step, "samples", picture)
        from gan_bench.viz import save_png
        save_png(picture, run_dir / "samples" / f"step{step:07d}.png")
        return metrics

    # Stop cleanly on SIGTERM/SIGINT (SLURM preemption, Ctrl-C): checkpoint at the end of the step.
    stop = {"signal": None}
    def request_stop(signum, _frame):
        stop["signal"] = signum
    old_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}

    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    log = Logger(run_dir)
    t_start = time.perf_counter()
    wall = lambda: wall_before + time.perf_counter() - t_start
    # Per-step scalars stay on the device until a log tick (no host sync inside the step).
    hist = torch.zeros(int(tc.log_every), 4, device=device)  # d_loss, g_loss, D(x), D(G(z))
    status, diverged_at, metrics = "completed", None, {}
    bar = _progress(tc, step)
    t_tick, step_tick = time.perf_counter(), step

    # ---------------------------------------------------------------- train
    try:
        while step < tc.steps:
            loss_t = loss_fn.at_step(step, tc.steps)
            log_now = (step + 1) % tc.log_every == 0 or step + 1 == tc.steps
            for _ in range(tc.n_critic):
                x = next_batch()
                fake = G(torch.randn(len(x), z_dim, generator=g_z, device=device))
                t_real, t_fake = D(x), D(fake.detach())
                d_loss = loss_t.d_loss(t_real, t_fake)
                if penalty is not None:
                    d_loss = d_loss + penalty(D, x, fake.detach(), g_pen)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            d_grad = _grad_norm(D) if log_now else None

            # Generator step on the fake batch of the last D step (ISIT'23 protocol). D's weights
            # need no gradient here, which saves its weight-gradient matmuls.
            D.requires_grad_(False)
            t_gen = D(fake)
            t_real_g = D(next_batch()) if loss_t.needs_real_for_g else None
            g_loss = loss_t.g_loss(t_gen, t_real_g)
            if log_now:
                fake.retain_grad()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)

            i = step % tc.log_every
            hist[i, 0], hist[i, 1] = d_loss.detach(), g_loss.detach()
            hist[i, 2], hist[i, 3] = torch.sigmoid(t_real.detach()).mean(), torch.sigmoid(t_gen.detach()).mean()
            step += 1

            # ---------------------------------------------------------- ticks
            if log_now:
                rows = hist[: i + 1].cpu()
                bad = ~torch.isfinite(rows[:, :2]).all(1)
                if bad.any():
                    status = "diverged"
                    diverged_at = step - (i + 1) + int(bad.nonzero()[0]) + 1
                    break
                now = time.perf_counter()
                scalars = {"loss/d": rows[:, 0].mean().item(), "loss/g": rows[:, 1].mean().item(),
                           "D/real": rows[:, 2].mean().item(), "D/fake": rows[:, 3].mean().item(),
                           "grad_norm/d": d_grad, "grad_norm/g": _grad_norm(G),
                           "grad_norm/g_samples": (fake.grad.flatten(1).norm(dim=1).mean() * len(fake)).item(),
                           "speed/steps_per_s": (step - step_tick) / max(now - t_tick, 1e-9)}
                scalars.update(_diagnostics(loss_t, t_gen.detach()))
                log.scalars(step, scalars)
                t_tick, step_tick = now, step
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(d=f"{scalars['loss/d']:.3f}", g=f"{scalars['loss/g']:.3f}", **_short(metrics))
            if step % tc.eval_every == 0 or step == tc.steps:
                metrics = evaluate()
            if step % tc.ckpt_every == 0 or step == tc.steps or stop["signal"] is not None:
                save_checkpoint()
            if stop["signal"] is not None:
                log.close()
                raise SystemExit(128 + stop["signal"])
    except UserError:
        raise
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as e:
        _write_result(result_path, cfg, "failed", step, wall(), None, metrics, evaluator, error=repr(e))
        raise
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()

    if status == "diverged":
        step = diverged_at
        metrics = evaluate()  # what the diverged model produces: usually nothing on a mode
        save_checkpoint()
    log.close()
    return _write_result(result_path, cfg, status, step, wall(), diverged_at, metrics, evaluator)


def _write_result(path, cfg, status, step, wall_seconds, diverged_at, metrics, evaluator, error=None) -> dict:
    result = {"status": status, "step": step, "steps": int(cfg.train.steps), "seed": int(cfg.seed),
              "wall_seconds": round(wall_seconds, 3), "diverged_at": diverged_at, "error": error,
              "metrics": {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in metrics.items()},
              "fingerprints": {k: evaluator.fingerprints[k] for k in metrics if k in evaluator.fingerprints},
              "replicas": None}
    checkpoint.atomic_write_json(path, result)
    return result


def _grad_norm(module) -> float:
    norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def _diagnostics(loss, fake_logits) -> dict:
    from gan_bench.losses import divergence_estimates, saturation_fraction

    out = {"diag/saturation": float(saturation_fraction(fake_logits))}
    if loss.logit_scale is not None:
        out.update({f"diag/{k}": float(v) for k, v in divergence_estimates(fake_logits, loss.logit_scale).items()})
    return out


def _short(metrics: dict) -> dict:
    keep = ("modes", "hq", "fid")
    return {k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in metrics.items() if k in keep}


def _progress(tc, step):
    if not tc.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=int(tc.steps), initial=step, unit="step", dynamic_ncols=True)
