"""Data-parallel training of the image flows: two CPU processes (Gloo) train what one process trains.

The image flows hold the two layers that see the batch as a whole: ActNorm, which initialises
itself from its first training batch, and batch norm in the couplings' conditioners. The oracles:

* :class:`DistributedBatchNorm` on two ranks, each holding half of a batch, against
  ``torch.nn.BatchNorm2d`` on the whole batch: the outputs, the input and parameter gradients and the
  running statistics agree to float64 rounding.
* The quick MNIST F-NSF (12 batch norms, 9 ActNorms) trained for four steps by two ranks of DDP
  against one process with the same seed and total batch, in float64: the losses and validation
  losses agree to 1e-9 relative (measured: 5e-16 and 8e-16), the parameters and running statistics
  to 1e-9 relative plus 1e-10 absolute (measured: 3e-12 at most; Adam divides each gradient by its
  own scale, so the rounding of the reordered sums over the batch grows most where a gradient is
  small). The same two ranks without the fix (ActNorm from each rank's slice, batch norm per slice)
  end 0.2 away: the test can fail.
"""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import funnelkit as fk
from funnelkit import distributed
from funnelkit.distributed_batch_norm import DistributedBatchNorm, convert_batch_norm
from funnelkit.experiments.runs import image_batches

WORLD, BATCH, STEPS = 2, 16, 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the batch norm ---------------------------------------------------------------------------
def norm_inputs():
    g = torch.Generator().manual_seed(3)
    x = 2.0 + 3.0 * torch.randn(12, 3, 4, 5, generator=g, dtype=torch.float64)
    weights = torch.randn(12, 3, 4, 5, generator=g, dtype=torch.float64)  # the loss: sum(weights * y**2)
    return x, weights


def plain_norm():
    torch.manual_seed(4)
    norm = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.3).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    return norm


def run_norm(norm, x, weights, passes=2):
    """``passes`` training passes on ``x``; the outputs, the gradients (summed over passes)."""
    x = x.clone().requires_grad_(True)
    outputs = []
    for _ in range(passes):
        y = norm(x)
        (weights * y**2).sum().backward()
        outputs.append(y.detach())
    return {"y": torch.cat(outputs), "x_grad": x.grad, "weight_grad": norm.weight.grad, "bias_grad": norm.bias.grad,
            "running_mean": norm.running_mean, "running_var": norm.running_var,
            "batches": norm.num_batches_tracked}


def interleave(parts):
    """Rows of the ranks' slices back in the batch's order (the inverse of ``batch[r::world]``)."""
    return torch.stack(parts, 1).flatten(0, 1)


def _norm_on_rank(rank):
    x, weights = norm_inputs()
    norm = convert_batch_norm(plain_norm())
    assert isinstance(norm, DistributedBatchNorm)
    out = run_norm(norm, x[rank::WORLD], weights[rank::WORLD])
    for name in ("weight_grad", "bias_grad"):  # what DDP does to the parameters' gradients (a sum here)
        torch.distributed.all_reduce(out[name])
    return out


# -- the image flow -----------------------------------------------------------------------------
def image_data():
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return image_batches(images, 5), image_batches(images, 5)(16, torch.Generator().manual_seed(9))


def make_trainer(checkpoint_path=None):
    fk.seed_everything(0)
    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick").double()
    sample_batch, validation = image_data()
    config = fk.TrainConfig(steps=STEPS, batch_size=BATCH, lr=2e-3, eval_every=2, checkpoint_every=STEPS)
    return fk.Trainer(model, sample_batch, config, eval_data=validation.double(), checkpoint_path=checkpoint_path)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train_on_rank(rank, folder):
    trainer = make_trainer(folder / "checkpoint.pt")
    assert isinstance(trainer.loss_module, torch.nn.parallel.DistributedDataParallel)
    assert sum(isinstance(m, DistributedBatchNorm) for m in trainer.model.modules()) == 12
    trainer.fit(progress=False)
    return {"state": state(trainer.model), "loss": trainer.history["loss"], "eval_loss": trainer.history["eval_loss"]}


def _train_without_the_fix():
    """DDP as before: ActNorm initialised from this rank's slice, batch norm over this rank's slice."""
    initialise, convert = distributed.initialise_from_full_batch, distributed.convert_batch_norm
    distributed.initialise_from_full_batch, distributed.convert_batch_norm = (lambda model, batch: False,
                                                                               lambda model: model)
    try:
        trainer = make_trainer()
        trainer.fit(progress=False)
    finally:
        distributed.initialise_from_full_batch, distributed.convert_batch_norm = initialise, convert
    return {"state": state(trainer.model), "loss": trainer.history["loss"]}


def _rank(rank, world, port, folder):
    """One rank, set up as torchrun would: the environment names the rank and the rendezvous."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    folder = Path(folder)
    with distributed.session("cpu"):
        result = {"norm": _norm_on_rank(rank), "trained": _train_on_rank(rank, folder),
                  "unfixed": _train_without_the_fix()}
    torch.save(result, folder / f"result{rank}.pt")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp-images")
    mp.spawn(_rank, args=(WORLD, free_port(), str(folder)), nprocs=WORLD, join=True)
    return folder, [torch.load(folder / f"result{r}.pt") for r in range(WORLD)]


@pytest.fixture(scope="module")
def one_process():
    trainer = make_trainer()
    trainer.fit(progress=False)
    return trainer


def test_distributed_batch_norm_on_two_ranks_is_batch_norm_on_the_whole_batch(two_ranks):
    x, weights = norm_inputs()
    full = run_norm(plain_norm(), x, weights)
    halves = [result["norm"] for result in two_ranks[1]]
    half_rows = len(x) // WORLD
    for name, passes in (("y", 2), ("x_grad", 1)):  # rank r holds rows r, r + 2, ... of each pass
        for p in range(passes):
            joined = interleave([h[name][p * half_rows:(p + 1) * half_rows] for h in halves])
            assert torch.allclose(joined, full[name][p * len(x):(p + 1) * len(x)], rtol=1e-12, atol=1e-12), name
    for half in halves:
        for name in ("weight_grad", "bias_grad", "running_mean", "running_var"):
            assert torch.allclose(half[name], full[name], rtol=1e-12, atol=1e-12), name
        assert int(half["batches"]) == int(full["batches"]) == 2
    # the oracle can fail: one rank's half alone normalises by other statistics
    alone = run_norm(plain_norm(), x[0::2], weights[0::2])
    assert not torch.allclose(alone["running_mean"], full["running_mean"], atol=1e-3)


def test_distributed_batch_norm_evaluates_with_running_statistics_like_torch():
    x, weights = norm_inputs()
    plain, ours = plain_norm(), convert_batch_norm(plain_norm())
    run_norm(plain, x, weights), run_norm(ours, x, weights)  # no process group: torch's own training pass
    plain.eval(), ours.eval()
    assert torch.equal(ours(x), plain(x))
    assert list(ours.state_dict()) == list(plain.state_dict())


def test_two_processes_train_the_image_flow_as_one(two_ranks, one_process):
    results = two_ranks[1]
    single = state(one_process.model)
    for result in results:
        trained = result["trained"]
        assert trained["loss"] == pytest.approx(one_process.history["loss"], rel=1e-9)
        assert trained["eval_loss"] == pytest.approx(one_process.history["eval_loss"], rel=1e-9)
        assert list(trained["state"]) == list(single)
        for name, value in single.items():  # parameters, running statistics, ActNorm's flags
            assert torch.allclose(trained["state"][name], value, rtol=1e-9, atol=1e-10), name
    assert torch.equal(results[0]["trained"]["state"]["_transform._transforms.1._transforms.1._transforms.0.shift"],
                       results[1]["trained"]["state"]["_transform._transforms.1._transforms.1._transforms.0.shift"])


def test_without_full_batch_actnorm_and_shared_batch_norm_the_runs_differ(two_ranks, one_process):
    unfixed = two_ranks[1][0]["unfixed"]
    single = state(one_process.model)
    assert unfixed["loss"][0] != pytest.approx(one_process.history["loss"][0], rel=1e-6)
    worst = max((unfixed["state"][k] - v).abs().max().item() for k, v in single.items()
                if v.is_floating_point() and v.numel())
    assert worst > 1e-4  # measured: 0.2


def test_actnorm_from_one_rank_slice_differs_from_the_full_batch_initialisation():
    sample_batch, _ = image_data()
    batch = sample_batch(BATCH, torch.Generator().manual_seed(0)).double()
    initialised = []
    for part in (batch, batch[0::WORLD]):
        fk.seed_everything(0)
        model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick").double()
        assert distributed.initialise_from_full_batch(model, part)
        assert not distributed.uninitialised(model) and not distributed.initialise_from_full_batch(model, part)
        initialised.append(torch.cat([m.shift for m in model.modules() if hasattr(m, "initialized")]))
    assert not torch.allclose(*initialised, atol=1e-3)


def test_initialising_actnorm_leaves_the_batch_norm_running_statistics_alone():
    sample_batch, _ = image_data()
    fk.seed_everything(0)
    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick").double()
    before = state(model)
    distributed.initialise_from_full_batch(model, sample_batch(BATCH, torch.Generator().manual_seed(0)))
    after = state(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith((".shift", ".log_scale", ".initialized")) for k in changed)


def test_the_rank_0_checkpoint_loads_as_the_trained_model(two_ranks):
    folder, results = two_ranks
    loaded = fk.load(folder / "checkpoint.pt")
    assert not any(isinstance(m, DistributedBatchNorm) for m in loaded.modules())
    for name, value in state(loaded).items():
        assert torch.equal(value, results[0]["trained"]["state"][name]), name


def test_models_whose_training_pass_draws_random_numbers_are_refused_under_torchrun(tmp_path, capsys, monkeypatch):
    from funnelkit.cli.main import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for words, reason in ((["images", "--model", "vae"], "VAE's sampled latent"),
                          (["anomaly", "--model", "nsf", "--preset", "paper"], "dropout with p > 0")):
        assert main(["train", *words, "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert "cannot train under torchrun" in err and reason in err
        assert not (tmp_path / "run").exists()
    assert distributed.random_in_training(fk.models.image_model("f-nsf", "mnist", 5, preset="quick")) == []


def test_the_command_line_trains_the_quick_image_flow_under_torchrun_as_one_process(tmp_path):
    """float32 end to end: the same batches, losses and test bits/dim as one process, to float32
    rounding of the reordered sums (measured: the losses 1e-7 apart, the bits/dim 3e-9)."""
    import json
    import subprocess
    import sys

    from funnelkit.checkpoints import read_checkpoint
    from funnelkit.cli.main import main

    words = ["train", "images", "--steps", "2", "--device", "cpu", "--out"]
    assert main([*words, str(tmp_path / "one")]) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "-m", "funnelkit", *words, str(tmp_path / "two")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training on 2 processes") == 1
    one, two = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two"))
    assert two["training"]["final_train_loss"] == pytest.approx(one["training"]["final_train_loss"], rel=1e-5)
    assert two["evaluation"]["bpd"] == pytest.approx(one["evaluation"]["bpd"], rel=1e-5)
    losses = [read_checkpoint(tmp_path / name)["trainer"]["history"]["loss"] for name in ("one", "two")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
