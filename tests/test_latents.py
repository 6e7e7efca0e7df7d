"""Training latents: fresh per step, or a fixed per-replica pool walked in shuffled passes."""

import pytest
import torch

from gan_bench.errors import UserError
from gan_bench.latents import Latents
from gan_bench.train import train


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_fresh_latents_are_independent_normal_draws_per_replica():
    z = Latents(gens(1, 2), 3, "cpu")(5)
    expected = torch.stack([torch.randn(5, 3, generator=g) for g in gens(1, 2)])
    assert torch.equal(z, expected) and z.shape == (2, 5, 3)


def test_pool_is_walked_in_shuffled_passes_with_a_short_last_batch():
    lat = Latents(gens(7), 2, "cpu", pool=10)
    pool = torch.randn(10, 2, generator=gens(7)[0])  # drawn first, from the replica's own stream
    assert torch.equal(lat.pool[0], pool)
    passes = []
    for _ in range(2):
        batches = [lat(4) for _ in range(3)]
        assert [b.shape[1] for b in batches] == [4, 4, 2]
        passes.append(torch.cat(batches, 1)[0])
    for walked in passes:  # each pass uses every pool vector exactly once
        assert sorted(map(tuple, walked.tolist())) == sorted(map(tuple, pool.tolist()))
    assert not torch.equal(passes[0], passes[1])  # in a new order


def test_replica_pools_match_single_runs_and_state_round_trips():
    ens = Latents(gens(3, 4), 2, "cpu", pool=6)
    single = Latents(gens(4), 2, "cpu", pool=6)
    for _ in range(4):
        assert torch.equal(ens(4)[1], single(4)[0])
    state = ens.state_dict()
    rng = [g.get_state() for g in ens.gens]
    nxt = ens(4)
    again = Latents(gens(3, 4), 2, "cpu", pool=6)
    for g, s in zip(again.gens, rng):
        g.set_state(s)
    again.load_state_dict(state)
    assert torch.equal(again(4), nxt)


def test_pooled_run_extended_equals_one_straight_run(cfg_factory, tmp_path):
    common = ["train.latent_pool=train", "train.log_every=5", "train.ckpt_every=100", "train.eval_every=100"]
    straight = tmp_path / "straight"
    train(cfg_factory(*common, "train.steps=40", run_dir=straight))
    split = tmp_path / "split"
    train(cfg_factory(*common, "train.steps=20", run_dir=split))   # 2000 points / 128: a pass is 16 steps
    train(cfg_factory(*common, "train.steps=40", run_dir=split))   # resumes mid-pass from the checkpoint
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(split / "checkpoints" / "last.pt", weights_only=False)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    # Passes of 16 batches (15 x 128 + 80): after 40 steps, 2 passes done and 8 batches into the third.
    assert a["latents"]["pos"] == b["latents"]["pos"] == 8 * 128


def test_pool_changes_the_run_and_bad_values_are_refused(cfg_factory, tmp_path):
    fresh = train(cfg_factory("train.steps=5", run_dir=tmp_path / "a"))
    pooled = train(cfg_factory("train.steps=5", "train.latent_pool=300", run_dir=tmp_path / "b"))
    assert fresh["status"] == pooled["status"] == "completed"
    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=False)["G"] for r in "ab")
    assert not all(torch.equal(a[k], b[k]) for k in a)  # same seed, other latents: another trajectory
    with pytest.raises(UserError, match="train.latent_pool must be null"):
        train(cfg_factory("train.latent_pool=-3", run_dir=tmp_path / "c"))
