"""Data-parallel training: two CPU processes (Gloo) train the same model as one process.

The oracle: a single process trained on the full batch of 64 points, against two ranks of
DDP that each take 32 of the same 64 points. In float64 the final parameters agree to
rounding, and only rank 0 writes a checkpoint.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import funnelkit as fk
from funnelkit import distributed

from .conftest import small_plane_model

STEPS, BATCH, WORLD = 10, 64, 2
ROOT = Path(__file__).resolve().parents[1]


def sample_batch(n, generator):
    return fk.data.four_circles(n, generator=generator)


def make_trainer(checkpoint_path=None):
    fk.seed_everything(0)
    model = small_plane_model("f-nsf", dtype=torch.float64)
    config = fk.TrainConfig(steps=STEPS, batch_size=BATCH, lr=3e-3, checkpoint_every=5, eval_every=5)
    return fk.Trainer(model, sample_batch, config, eval_data=fk.data.four_circles(128, seed=5),
                      checkpoint_path=checkpoint_path)


def parameters(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, folder):
    """One rank, set up as torchrun would: the environment names the rank and the rendezvous."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    folder = Path(folder)
    with distributed.session("cpu") as device:
        assert device.type == "cpu" and distributed.world_size() == world and distributed.rank() == rank
        trainer = make_trainer(folder / f"rank{rank}" / "checkpoint.pt")
        assert isinstance(trainer.loss_module, torch.nn.parallel.DistributedDataParallel)
        seen = []  # the points this rank's loss was computed on, step by step
        trainer.loss_module.module.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
        trainer.fit(progress=False)
        torch.save({"parameters": parameters(trainer.model), "seen": seen, "loss": trainer.history["loss"],
                    "eval_loss": trainer.history["eval_loss"], "generator": trainer.generator.get_state()},
                   folder / f"result{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank, args=(WORLD, free_port(), str(folder)), nprocs=WORLD, join=True)
    return folder


def test_two_processes_train_the_same_model_as_one_with_the_same_total_batch(two_ranks):
    single = make_trainer()
    start = parameters(single.model).clone()
    batches = []
    single.loss_module.register_forward_pre_hook(lambda module, args: batches.append(args[0].clone()))
    single.fit(progress=False)
    results = [torch.load(two_ranks / f"result{r}.pt") for r in range(WORLD)]
    for step, batch in enumerate(batches):  # each rank saw half of the batch, together all of it
        halves = [result["seen"][step] for result in results]
        assert [len(h) for h in halves] == [BATCH // WORLD] * WORLD
        assert torch.equal(torch.stack(halves, 1).reshape(BATCH, 2), batch)
    for result in results:
        assert torch.allclose(result["parameters"], parameters(single.model), rtol=0, atol=1e-10)
        assert result["loss"] == pytest.approx(single.history["loss"], rel=1e-12)  # the full batch's loss
        assert result["eval_loss"] == pytest.approx(single.history["eval_loss"], rel=1e-12)
        assert torch.equal(result["generator"], single.generator.get_state())
    assert not torch.allclose(parameters(single.model), start, atol=1e-3)  # training moved the model
    assert torch.equal(results[0]["parameters"], results[1]["parameters"])  # the ranks agree exactly


def test_only_rank_0_writes_checkpoints_and_a_run_resumes_from_them(two_ranks):
    assert (two_ranks / "rank0" / "checkpoint.pt").exists()
    assert not (two_ranks / "rank1").exists()
    resumed = make_trainer(two_ranks / "rank0" / "checkpoint.pt").resume()
    assert resumed.step == STEPS
    assert torch.equal(parameters(resumed.model), torch.load(two_ranks / "result0.pt")["parameters"])


def test_the_batch_must_split_evenly_and_each_rank_takes_its_own_rows():
    batch = torch.arange(12.0).reshape(6, 2)
    slices = [distributed.shard(batch, r, 3) for r in range(3)]
    assert all(len(s) == 2 for s in slices)
    assert sorted(torch.cat(slices)[:, 0].tolist()) == batch[:, 0].tolist()  # the union is the batch
    with pytest.raises(ValueError, match="cannot be split evenly over 4 processes"):
        distributed.shard(batch, 0, 4)


def test_outside_torchrun_everything_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched_by_torchrun()
    assert distributed.setup("cpu") == torch.device("cpu")
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    trainer = make_trainer()
    assert not isinstance(trainer.loss_module, torch.nn.parallel.DistributedDataParallel)


def test_mixed_precision_is_refused_clearly_off_cuda():
    model = small_plane_model("f-nsf", dtype=torch.float32)
    with pytest.raises(ValueError, match="CUDA GPUs only"):
        fk.Trainer(model, sample_batch, fk.TrainConfig(steps=2, batch_size=8, amp=True))


def test_the_command_line_under_torchrun_prints_and_writes_once(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "-m", "funnelkit", "train", "four-circles", "--steps", "4",
               "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training on 2 processes") == 1
    assert done.stdout.count("wrote ") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json"]
    assert fk.load(out).metrics["steps"] == 4


def test_the_command_line_takes_workers_and_refuses_more_workers(tmp_path, capsys, monkeypatch):
    from funnelkit.cli.main import main
    from funnelkit.train import Trainer

    used = []  # the workers setting of every batch the Trainer drew
    draw = Trainer._next_batch
    monkeypatch.setattr(Trainer, "_next_batch", lambda self: used.append(self.speed.workers) or draw(self))
    for workers in ("0", "1"):
        assert main(["train", "four-circles", "--steps", "3", "--device", "cpu", "--workers", workers,
                     "--out", str(tmp_path / workers)]) == 0
    assert used == [0, 0, 0, 1, 1, 1]
    assert torch.equal(parameters(fk.load(tmp_path / "0")), parameters(fk.load(tmp_path / "1")))
    capsys.readouterr()
    assert main(["train", "four-circles", "--steps", "3", "--device", "cpu", "--workers", "2",
                 "--out", str(tmp_path / "2")]) == 2
    assert "--workers must be 0" in capsys.readouterr().err
    assert not (tmp_path / "2").exists()

