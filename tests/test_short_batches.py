"""Short batches: the last batch of an epoch (N_train not a multiple of the batch) and the end of a
latent pool's pass (train.latent_pool=N) never leave a real and a fake batch of different sizes
where a loss or a penalty pairs them one to one (rsgan's G step, the gradient penalty)."""

import pytest
import torch

from gan_bench.data import DataSet
from gan_bench.train import train
from gan_bench.training.batches import Batches


def batches(n: int, size: int) -> Batches:
    data = DataSet(name="toy", kind="toy", train=torch.arange(n, dtype=torch.float32)[:, None])
    return Batches(data, size, [torch.Generator().manual_seed(0)], torch.device("cpu"))


def test_next_n_carries_on_into_the_next_epoch():
    b = batches(10, 4)
    first = [b.next() for _ in range(3)]
    assert [x.shape[1] for x in first] == [4, 4, 2]  # the plain batches keep the DataLoader's short one
    epoch1 = torch.cat(first, 1)[0, :, 0]
    assert sorted(epoch1.tolist()) == list(range(10))

    b = batches(10, 4)
    b.next(), b.next()
    x = b.next(4)[0, :, 0]  # 2 left in epoch 1, then the first 2 of epoch 2's order
    assert x.shape == (4,) and torch.equal(x[:2], epoch1[8:])
    again = batches(10, 4)
    again.load_state_dict(b.state_dict())  # the carried position is in the checkpointed state
    seven = b.next(7)
    assert torch.equal(again.next(7), seven) and b.pos == again.pos == 9
    epoch2 = torch.cat([x[2:], seven[0, :, 0], b.next()[0, :, 0]])  # the plain batch: the 1 left
    assert sorted(epoch2.tolist()) == list(range(10))  # epoch 2 is still one permutation, walked in order


@pytest.mark.parametrize("overrides", [
    ["loss=rsgan", "dataset.n_train=100", "train.batch_size=64"],           # G step's real batch at epoch end
    ["loss=ragan", "dataset.n_train=100", "train.batch_size=64", "train.n_critic=2"],
    ["loss=wgan", "penalty=gp", "train.latent_pool=100", "train.batch_size=64"],  # the pool's pass ends mid-batch
    ["loss=alpha", "alpha_d=0.5", "penalty=gp", "train.latent_pool=train", "dataset.n_train=100",
     "train.batch_size=64", "train.ensemble=2"],
])
def test_runs_with_short_batches_complete(cfg_factory, tmp_path, overrides):
    result = train(cfg_factory(*overrides, "train.steps=6", "train.log_every=3", run_dir=tmp_path / "run"))
    assert result["status"] == "completed" and result["step"] == 6
