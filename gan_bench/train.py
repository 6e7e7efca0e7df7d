"""The trainer: `train(cfg) -> dict`, one function read top to bottom.

Every random draw of a run comes from explicit generators seeded from `seed` (initialization, data
order, latents, penalties), so a run is a function of its config, a checkpoint holds its whole
state, and replica i of a seed ensemble (`train.ensemble=K`) reproduces the single run with seed+i.
All tensors carry a leading replica dim K (K = 1 for a single run): batches [K, B, ...],
logits [K, B], per-replica losses [K], summed before backward so replicas never mix.
"""

import copy
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan_bench import checkpoint
from gan_bench.config import check_config, hashed_config
from gan_bench.data import hold_out
from gan_bench.ensemble import build_replicas
from gan_bench.errors import UserError
from gan_bench.latents import Latents
from gan_bench.logger import Logger
from gan_bench.metrics import make_evaluator
from gan_bench.optim import build_optimizers
from gan_bench.viz import save_png

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
    K, seeds = int(tc.ensemble), [int(cfg.seed) + i for i in range(int(tc.ensemble))]
    run_dir = Path(cfg.paths.run_dir)
    result_path, ckpt_path = run_dir / "result.json", run_dir / "checkpoints" / "last.pt"
    device = pick_device(tc.device)
    if tc.deterministic:  # cuBLAS reads this when its first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = device.type == "cuda" and not tc.deterministic
    cfg_hash = checkpoint.config_hash(hashed_config(cfg))
    state = checkpoint.load(ckpt_path, cfg_hash) if ckpt_path.exists() else None

    # ---------------------------------------------------------------- data
    data = hold_out(build(cfg.dataset), cfg.eval.holdout)
    x_train = _place(data.train, device)  # toy data and images that fit: on the device, once
    to_model = _input_transform(data)
    n_train, batch = len(x_train), int(tc.batch_size)
    # train.epochs, when set, counts passes over the training set (the papers' unit) instead of steps.
    steps = int(tc.steps) if tc.epochs is None else int(tc.epochs) * math.ceil(n_train / batch)
    if result_path.exists():
        done = json.loads(result_path.read_text())
        if done.get("status") in ("completed", "diverged") and done.get("steps") == steps:
            done["skipped"] = True  # a finished run is never retrained
            return done
    g_data = [torch.Generator().manual_seed(stream_seed(s, "data")) for s in seeds]

    # ---------------------------------------------------------------- networks and objective
    G, D = build_replicas(lambda: build(cfg.model.generator), lambda: build(cfg.model.discriminator), seeds)
    fast = _speed_path(tc, device, data)
    fmt = torch.channels_last if fast["channels_last"] else torch.preserve_format
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    G_ema = copy.deepcopy(G).requires_grad_(False) if tc.ema > 0 else None  # evaluated instead of G
    G_run, D_run = (torch.compile(G), torch.compile(D)) if fast["compile"] else (G, D)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast["amp"])
    loss_fn = build(cfg.loss)
    penalty = build(cfg.penalty)
    z_dim = int(cfg.model.latent_dim)
    g_z = [torch.Generator(device).manual_seed(stream_seed(s, "latent")) for s in seeds]
    pool = tc.latent_pool if tc.latent_pool != "train" else n_train
    latents = Latents(g_z, z_dim, device, pool)  # fresh N(0, I) per step, or a fixed pool (train.latent_pool)
    g_pen = [torch.Generator(device).manual_seed(stream_seed(s, "penalty")) for s in seeds]
    # optim=adam|rmsprop|sgd, fused kernels where torch has them (gan_bench/optim.py). Elementwise,
    # so replicas stay independent, and deterministic on the CPU and CUDA alike.
    opt_g, opt_d = build_optimizers(cfg.optim, G, D)
    evaluator = make_evaluator(data, cfg)

    # ---------------------------------------------------------------- resume
    step, perms, pos, wall_before = 0, None, n_train, 0.0
    active = torch.ones(K, dtype=torch.bool, device=device)  # replicas still training
    replicas = [{"seed": s, "status": "completed", "diverged_at": None, "metrics": {}} for s in seeds]
    if state is not None:
        G.load_state_dict(state["G"]); D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"]); opt_d.load_state_dict(state["opt_d"])
        if G_ema is not None:
            G_ema.load_state_dict(state["G_ema"])
        pen_states = state["rng"]["penalty"]
        if not isinstance(pen_states, list):  # checkpoints before per-replica penalty streams held one
            pen_states = [pen_states] + [g.get_state() for g in g_pen[1:]]
        for gens, states in ((g_data, state["rng"]["data"]), (g_z, state["rng"]["latent"]), (g_pen, pen_states)):
            for g, s in zip(gens, states, strict=True):
                g.set_state(s)
        step, pos, wall_before, replicas = state["step"], state["pos"], state["wall_seconds"], state["replicas"]
        latents.load_state_dict(state.get("latents"))
        perms = None if state["perms"] is None else state["perms"].to(x_train.device)
        active = torch.tensor([r["status"] == "completed" for r in replicas], device=device)

    def save_checkpoint():
        checkpoint.save(ckpt_path, {
            "config_hash": cfg_hash, "step": step, "pos": pos, "wall_seconds": wall(),
            "perms": None if perms is None else perms.cpu(), "replicas": replicas,
            "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "G_ema": None if G_ema is None else G_ema.state_dict(), "latents": latents.state_dict(),
            "rng": {"data": [g.get_state() for g in g_data], "latent": [g.get_state() for g in g_z],
                    "penalty": [g.get_state() for g in g_pen]},
        })

    def next_batch():
        # Shuffled epochs over the fixed training set, one order per replica; the last batch of an
        # epoch may be short, as with a DataLoader(shuffle=True).
        nonlocal perms, pos
        if pos >= n_train:
            perms, pos = torch.stack([torch.randperm(n_train, generator=g) for g in g_data]).to(x_train.device), 0
        idx = perms[:, pos:pos + batch]
        pos += idx.shape[1]
        x = x_train[idx]
        if x.device != device:  # a set too large for the GPU: gather from the memory map, pin, copy async
            x = x.pin_memory().to(device, non_blocking=True)
        return to_model(x)

    def disc(x):
        with autocast:
            return D_run(x).float()  # losses always see fp32 logits

    def disc_eager(x):
        # For penalties: they differentiate D's input gradient again, which compiled graphs cannot
        # (aot_autograd has no double backward), so they run the uncompiled D.
        with autocast:
            return D(x).float()

    def gen(z):
        with autocast:
            return G_run(z)

    @torch.no_grad()
    def evaluate(which, final=False):
        net = G if G_ema is None else G_ema
        if G_ema is not None:  # batch-norm statistics are not averaged: take G's
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        net.eval()
        # All replicas on the same fixed test latents: z [n, z_dim] -> samples [K, n, ...].
        results = evaluator(lambda z: net(z.to(device).unsqueeze(0).expand(K, -1, -1)).float(), which, final)
        net.train()
        for i, (metrics, picture) in zip(which, results):
            replicas[i]["metrics"] = metrics
            log.metrics(step, metrics, {"replica": i, "seed": seeds[i]} if K > 1 else None)
            if picture is not None:
                log.image(step, "samples", picture)
                save_png(picture, run_dir / "samples" / f"step{step:07d}.png")
        if K > 1:
            log.scalars(step, _mean_metrics([replicas[i]["metrics"] for i in which]), "metrics_mean/")

    # Stop cleanly on SIGTERM/SIGINT (SLURM preemption, Ctrl-C): checkpoint at the end of the step.
    stop = {"signal": None}
    def request_stop(signum, _frame):
        stop["signal"] = signum
    old_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}

    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    log = Logger(run_dir)
    t_start = time.perf_counter()
    wall = lambda: wall_before + time.perf_counter() - t_start
    # Per-step numbers stay on the device until a log tick (no host sync inside the step).
    hist = torch.zeros(int(tc.log_every), 4, K, device=device)  # d_loss, g_loss, D(x), D(G(z))
    bar = _progress(tc, step, steps)
    t_tick, step_tick = time.perf_counter(), step
    n_active = int(active.sum())  # a host-side copy, updated at log ticks, so the loop never syncs

    # ---------------------------------------------------------------- train
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if tc.deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        while step < steps and n_active > 0:
            loss_t = loss_fn.at_step(step, steps)
            log_now = (step + 1) % tc.log_every == 0 or step + 1 == steps
            for _ in range(tc.n_critic):
                x = next_batch()
                fake = gen(latents(x.shape[1]))
                t_real, t_fake = disc(x), disc(fake.detach())
                d_loss = loss_t.d_loss(t_real, t_fake)
                d_total = torch.where(active, d_loss, 0).sum()  # a diverged replica is frozen
                if penalty is not None:
                    d_total = d_total + penalty(disc_eager, x, fake.detach(), g_pen, batch_dims=2)
                opt_d.zero_grad(set_to_none=True)
                d_total.backward()
                opt_d.step()
            d_grad = _grad_norm(D, active if K > 1 else None) if log_now else None

            # Generator step on the fake batch of the last D step (ISIT'23 protocol). D's weights
            # need no gradient here, which saves its weight-gradient matmuls.
            D.requires_grad_(False)
            t_gen = disc(fake)
            t_real_g = disc(next_batch()) if loss_t.needs_real_for_g else None
            g_loss = loss_t.g_loss(t_gen, t_real_g)
            if log_now:
                fake.retain_grad()
            opt_g.zero_grad(set_to_none=True)
            torch.where(active, g_loss, 0).sum().backward()
            opt_g.step()
            D.requires_grad_(True)
            if G_ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1 - tc.ema)

            i = step % tc.log_every
            hist[i, 0], hist[i, 1] = d_loss.detach(), g_loss.detach()
            hist[i, 2], hist[i, 3] = torch.sigmoid(t_real.detach()).mean(-1), torch.sigmoid(t_gen.detach()).mean(-1)
            step += 1

            # ---------------------------------------------------------- ticks
            if log_now:
                rows = hist[: i + 1].cpu()
                bad = ~torch.isfinite(rows[:, :2]).all(1) & active.cpu()  # [i + 1, K]
                newly = [k for k in range(K) if bad[:, k].any()]
                for k in newly:  # status is data: record, freeze, keep the others going
                    replicas[k].update(status="diverged", diverged_at=step - (i + 1) + int(bad[:, k].nonzero()[0]) + 1)
                    active[k] = False
                n_active -= len(newly)
                if newly:
                    evaluate(newly)  # what the diverged model produces: usually nothing on a mode
                ok = active.cpu()  # tick scalars average the replicas still training
                now = time.perf_counter()
                if ok.any():
                    keep = ok.to(device) if K > 1 else None
                    good = rows[:, :, ok]
                    scalars = {"loss/d": good[:, 0].mean().item(), "loss/g": good[:, 1].mean().item(),
                               "D/real": good[:, 2].mean().item(), "D/fake": good[:, 3].mean().item(),
                               "grad_norm/d": d_grad, "grad_norm/g": _grad_norm(G, keep),
                               "grad_norm/g_samples": _sample_grad_norm(fake, keep),
                               "speed/steps_per_s": (step - step_tick) / max(now - t_tick, 1e-9)}
                    scalars.update(_diagnostics(loss_t, t_gen.detach()[ok.to(device)]))
                    log.scalars(step, scalars)
                    if bar is not None:
                        bar.update(step - bar.n)
                        bar.set_postfix(d=f"{scalars['loss/d']:.3f}", g=f"{scalars['loss/g']:.3f}",
                                        **_short(replicas[0]["metrics"]))
                t_tick, step_tick = now, step
            if (step % tc.eval_every == 0 or step == steps) and n_active > 0:
                evaluate([k for k in range(K) if replicas[k]["status"] == "completed"], final=step == steps)
            if step % tc.ckpt_every == 0 or step == steps or stop["signal"] is not None or n_active == 0:
                save_checkpoint()
            if stop["signal"] is not None:
                log.close()
                raise SystemExit(128 + stop["signal"])
    except (UserError, SystemExit, KeyboardInterrupt):
        raise
    except Exception as e:
        _write_result(result_path, cfg, "failed", step, steps, wall(), replicas, evaluator, error=repr(e))
        raise
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # a process-wide switch: hand it back
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()

    log.close()
    for r in replicas:
        r["step"] = r["diverged_at"] or step
    status = "completed" if any(r["status"] == "completed" for r in replicas) else "diverged"
    return _write_result(result_path, cfg, status, step, steps, wall(), replicas, evaluator)


def _write_result(path, cfg, status, step, steps, wall_seconds, replicas, evaluator, error=None) -> dict:
    """result.json: a single run's record, or for an ensemble a summary plus one record per replica."""
    clean = lambda m: {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in m.items()}
    single = len(replicas) == 1
    done = [r["metrics"] for r in replicas if r["status"] == "completed"] or [r["metrics"] for r in replicas]
    metrics = replicas[0]["metrics"] if single else _mean_metrics(done)
    diverged_at = replicas[0]["diverged_at"] if single else None
    result = {"status": status, "step": replicas[0].get("step", step) if single else step,
              "steps": steps, "seed": int(cfg.seed), "wall_seconds": round(wall_seconds, 3),
              "diverged_at": diverged_at, "error": error, "metrics": clean(metrics),
              "fingerprints": {k: evaluator.fingerprints[k] for k in metrics if k in evaluator.fingerprints},
              "replicas": None if single else [{**r, "metrics": clean(r["metrics"])} for r in replicas]}
    checkpoint.atomic_write_json(path, result)
    return result


def _speed_path(tc, device, data) -> dict:
    """The CUDA speed path. `auto` turns each part on for CUDA (bf16 and channels_last only for
    image models: bf16's 8-bit mantissa would blur a 0.01-std toy mode), and everything is off under
    train.deterministic."""
    on_cuda = device.type == "cuda" and not tc.deterministic
    image = data.kind == "image"
    pick = lambda v, auto: bool(auto) if v == "auto" else bool(v) and not tc.deterministic
    return {"amp": pick(tc.amp, on_cuda and image), "compile": pick(tc.compile, on_cuda),
            "channels_last": pick(tc.channels_last, on_cuda and image)}


def _place(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The whole training set on the device when it fits in a quarter of free memory; otherwise it
    stays where it is (for image sets, the memory-mapped cache: pinning all of it could exhaust host
    memory) and each batch is gathered, pinned and copied over (next_batch)."""
    if device.type != "cuda":
        return x
    free, _ = torch.cuda.mem_get_info(device)
    return x.to(device) if x.numel() * x.element_size() < free // 4 else x


def _input_transform(data):
    if data.kind == "image":
        from gan_bench.data.images import normalize
        return normalize
    return lambda x: x


def _mean_metrics(records: list[dict]) -> dict:
    keys = [k for k, v in (records[0] if records else {}).items() if isinstance(v, (int, float))]
    return {k: float(np.mean([r[k] for r in records])) for k in keys}


def _grad_norm(module, keep=None) -> float:
    """Gradient norm over all parameters; `keep` [K] selects replicas of a batched model (the
    frozen ones may hold NaN)."""
    norms = [(p.grad if keep is None else p.grad[keep]).norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def _sample_grad_norm(fake, keep=None) -> float:
    # dLoss/dx per generated sample, times B to undo the batch mean: the per-sample signal G gets.
    g = fake.grad if keep is None else fake.grad[keep]
    return (g.flatten(2).norm(dim=2).mean() * fake.shape[1]).item()


def _diagnostics(loss, fake_logits) -> dict:
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


def _progress(tc, step, steps):
    if not tc.progress:
        return None
    from tqdm import tqdm
    return tqdm(total=steps, initial=step, unit="step", dynamic_ncols=True)
