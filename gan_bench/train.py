"""The trainer: `train(cfg) -> dict`, one function read top to bottom: set up, restore, loop (D
steps, G step, then one gate before the periodic upkeep: log tick, evaluation, checkpoint), result.
Its parts live in gan_bench/training/ (listed there).

Every random draw of a run comes from explicit generators seeded from `seed` (initialization, data
order, latents, penalties), so a run is a function of its config, a checkpoint holds its whole
state, and replica i of a seed ensemble (`train.ensemble=K`) reproduces the single run with seed+i.
All tensors carry a leading replica dim K (K = 1 for a single run): batches [K, B, ...],
logits [K, B], per-replica losses [K], summed before backward so replicas never mix.
"""

from contextlib import ExitStack
from pathlib import Path

import torch
from omegaconf import DictConfig

from gan_bench import checkpoint, records
from gan_bench.config import check_config, checkpoint_hashes
from gan_bench.data import hold_out
from gan_bench.ensemble import build_replicas
from gan_bench.errors import UserError
from gan_bench.latents import Latents
from gan_bench.logger import Logger
from gan_bench.memory import check_ensemble
from gan_bench.metrics import make_evaluator
from gan_bench.optim import build_optim_schedule, build_optimizers
from gan_bench.training.batches import Batches
from gan_bench.training.evaluation import evaluate_pending
from gan_bench.training.networks import Networks
from gan_bench.training.schedules import StepSchedules
from gan_bench.training.setup import (
    build,
    configure_backends,
    deterministic_algorithms,
    pick_device,
    replica_seeds,
    total_steps,
)
from gan_bench.training.signals import Stopped, stop_on_signals
from gan_bench.training.state import RunState
from gan_bench.training.streams import Streams
from gan_bench.training.ticks import Ticks


def train(cfg: DictConfig) -> dict:
    # ---------------------------------------------------------------- set up
    check_config(cfg)
    opts, seeds = cfg.train, replica_seeds(cfg)
    run_dir = Path(cfg.paths.run_dir)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    device = pick_device(opts.device)
    configure_backends(opts, device)
    hashes = checkpoint_hashes(cfg)
    cfg_hash = hashes[0]
    saved = checkpoint.load(ckpt_path, hashes) if ckpt_path.exists() else None

    data = hold_out(build(cfg.dataset), cfg.eval.holdout)
    streams = Streams(seeds, device)
    batches = Batches(data, opts.batch_size, streams.rng_data, device)
    steps = total_steps(opts, batches.n)
    if (done := records.finished(run_dir, steps)) is not None:
        return done

    build_g, build_d = (lambda: build(cfg.model.generator)), (lambda: build(cfg.model.discriminator))
    pool = opts.latent_pool if opts.latent_pool != "train" else batches.n
    if len(seeds) > 1:  # an ensemble that cannot fit is one line now, not an out-of-memory error later
        check_ensemble(len(seeds), build_g, build_d, int(cfg.model.latent_dim), opts.batch_size, device,
                       ema=opts.ema > 0, n_train=batches.n, pool=pool or 0)
    G, D = build_replicas(build_g, build_d, seeds, impl=opts.ensemble_impl)
    nets = Networks(G, D, opts, device, data)  # G and D moved to the device in place
    loss_fn, penalty = build(cfg.loss), build(cfg.penalty)
    # Fresh N(0, I) per step, or a fixed pool (train.latent_pool), from each replica's latent stream.
    latents = Latents(streams.rng_latent, int(cfg.model.latent_dim), device, pool)

    opt_g, opt_d = build_optimizers(cfg.optim, G, D)  # elementwise: replicas stay independent
    schedules = StepSchedules(loss_fn, penalty, build_optim_schedule(cfg.optim), opt_g, opt_d, steps, opts.n_critic)
    evaluator = make_evaluator(data, cfg)

    # ---------------------------------------------------------------- restore
    run = RunState(seeds, nets, opt_g, opt_d, streams, batches, latents, device)
    if saved is not None:
        run.load_state_dict(saved)

    # ---------------------------------------------------------------- train
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        log = Logger(run_dir)
        stack.callback(log.close)
        run.start_clock()
        ticks = Ticks(opts.log_every, len(seeds), device, run.step, steps, log, opts.progress)
        stack.callback(ticks.close)
        stack.enter_context(deterministic_algorithms(opts.deterministic))
        try:
            if evaluate_pending(run, evaluator, log, run_dir, stop):  # a stop cut them short last time
                checkpoint.save(ckpt_path, run.state_dict(cfg_hash))  # done: last.pt says so again
            while run.step < steps and run.n_active > 0:
                loss = schedules.at(run.step)  # and this step's rates, beta2 and penalty weight
                log_now = (run.step + 1) % opts.log_every == 0 or run.step + 1 == steps
                for critic in range(opts.n_critic):
                    real = batches.next()
                    fake = nets.gen(latents(real.shape[1]))
                    if fake.shape[1] < real.shape[1]:  # a latent pool's pass ended mid-batch: pair real to it
                        real = real[:, :fake.shape[1]]
                    real_logits, fake_logits = nets.disc(real), nets.disc(fake.detach())
                    d_loss = loss.d_loss(real_logits, fake_logits)
                    d_total = torch.where(run.active, d_loss, 0).sum()  # a diverged replica is frozen
                    if (pen := schedules.penalty_for(run.step, critic)) is not None:  # lazy: some steps only
                        d_total = d_total + pen(nets.disc_eager, real, fake.detach(), streams.rng_penalty,
                                                batch_dims=2)
                    opt_d.zero_grad(set_to_none=True)
                    d_total.backward()
                    opt_d.step()

                # Generator step on the fake batch of the last D step (ISIT'23 protocol). D's weights
                # need no gradient here, which saves its weight-gradient matmuls.
                D.requires_grad_(False)
                gen_logits = nets.disc(fake)
                real_logits_g = nets.disc(batches.next(fake.shape[1])) if loss.needs_real_for_g else None
                g_loss = loss.g_loss(gen_logits, real_logits_g)
                if log_now:
                    fake.retain_grad()  # for the tick's per-sample gradient norm
                opt_g.zero_grad(set_to_none=True)
                torch.where(run.active, g_loss, 0).sum().backward()
                opt_g.step()
                D.requires_grad_(True)
                nets.update_ema(run.step)
                ticks.record(run.step, d_loss, g_loss, real_logits, gen_logits)
                run.step += 1

                # ---------------------------------------------------- periodic upkeep, behind one gate
                stopping = bool(stop)  # read once; a signal later in the upkeep: inside its evaluations
                                       # (signals.Stopped), else after the next step
                eval_now = run.step % opts.eval_every == 0 or run.step == steps
                ckpt_now = run.step % opts.ckpt_every == 0 or run.step == steps or stopping
                if not (log_now or eval_now or ckpt_now):
                    continue
                if log_now and (newly := ticks.tick(run, nets, fake, loss, gen_logits, schedules.step_penalty)):
                    run.pending_evals.append({"which": newly, "final": False})  # what a diverged model makes
                if eval_now and run.n_active > 0:
                    run.pending_evals.append({"which": run.training(), "final": run.step == steps})
                evaluate_pending(run, evaluator, log, run_dir, stop)  # a stop inside checkpoints them pending
                if ckpt_now or run.n_active == 0:
                    checkpoint.save(ckpt_path, run.state_dict(cfg_hash))
                if stopping:
                    raise SystemExit(128 + stop.signum)
        except (UserError, SystemExit, KeyboardInterrupt):
            raise
        except Stopped:  # within seconds, mid-evaluation: the checkpoint keeps what is left pending
            checkpoint.save(ckpt_path, run.state_dict(cfg_hash))
            raise SystemExit(128 + stop.signum) from None
        except Exception as e:
            records.write(run_dir, records.record("failed", steps=steps, seed=int(cfg.seed), step=run.step,
                                                  wall_seconds=run.wall_seconds(), replicas=run.replicas,
                                                  fingerprints=evaluator.fingerprints, error=repr(e)))
            raise

    # ---------------------------------------------------------------- result
    for r in run.replicas:
        r["step"] = r["diverged_at"] or run.step
    status = "completed" if any(r["status"] == "completed" for r in run.replicas) else "diverged"
    return records.write(run_dir, records.record(status, steps=steps, seed=int(cfg.seed), step=run.step,
                                                 wall_seconds=run.wall_seconds(), replicas=run.replicas,
                                                 fingerprints=evaluator.fingerprints))
