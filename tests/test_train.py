"""The Trainer: resumable, seeded, guarded against NaN, time-boxed for the dashboard."""

import time

import pytest
import torch

import funnelkit as fk

from .conftest import small_plane_model


def sample_batch(n, generator):
    return fk.data.four_circles(n, generator=generator)


def make_trainer(tmp_path=None, steps=12, **config):
    fk.seed_everything(0)
    model = small_plane_model("f-nsf", dtype=torch.float32)
    settings = dict(steps=steps, batch_size=64, lr=3e-3, checkpoint_every=6, eval_every=6) | config
    return fk.Trainer(model, sample_batch, fk.TrainConfig(**settings), eval_data=fk.data.four_circles(256, seed=5),
                      checkpoint_path=tmp_path / "checkpoint.pt" if tmp_path else None)


def parameters(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = make_trainer(tmp_path / "straight")
    straight.fit(progress=False)

    first = make_trainer(tmp_path / "interrupted")
    for _ in range(6):  # interrupted right after the checkpoint at step 6
        first.train_step()
    first.save()
    first.train_step()  # work after the checkpoint is lost, as in a crash
    resumed = make_trainer(tmp_path / "interrupted").resume()
    assert resumed.step == 6
    resumed.fit(progress=False)

    assert torch.equal(parameters(resumed.model), parameters(straight.model))
    assert resumed.history["loss"] == straight.history["loss"]


def test_a_seeded_run_is_repeatable_and_seeds_differ():
    a, b = make_trainer(steps=5), make_trainer(steps=5)
    c = make_trainer(steps=5, seed=1)
    for t in (a, b, c):
        t.fit(progress=False)
    assert a.history["loss"] == b.history["loss"] != c.history["loss"]


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path)
    for _ in range(3):
        trainer.train_step()
    path = trainer.save()
    saved = path.read_bytes()
    good = parameters(trainer.model).clone()
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(fk.TrainingDiverged, match=r"loss became nan at step 4.*step 3\) is kept at .*checkpoint.pt"):
        trainer.train_step()
    assert path.read_bytes() == saved
    assert torch.equal(parameters(fk.load(path)), good)
    with pytest.raises(fk.CheckpointError, match="refusing to save"):
        trainer.save()
    assert path.read_bytes() == saved


def test_training_lowers_the_loss_and_evaluates():
    trainer = make_trainer(steps=60)
    trainer.fit(progress=False)
    assert sum(trainer.history["loss"][-10:]) / 10 < sum(trainer.history["loss"][:10]) / 10 - 0.3
    assert trainer.history["eval_step"] == list(range(6, 61, 6))


def test_train_for_is_time_boxed_and_takes_at_least_one_step():
    trainer = make_trainer(steps=10_000, schedule="constant")
    assert trainer.train_for(0.0) == 1
    start = time.perf_counter()
    steps = trainer.train_for(0.5)
    assert steps >= 1 and time.perf_counter() - start < 3.0
    assert trainer.train_for(10.0, max_steps=3) == 3


def test_callbacks_fire_and_unknown_events_are_refused(tmp_path):
    trainer = make_trainer(tmp_path, steps=6)
    seen = []
    trainer.add_callback("on_step_end", lambda t: seen.append(("step", t.step)))
    trainer.add_callback("on_eval", lambda t: seen.append(("eval", t.step)))
    trainer.add_callback("on_checkpoint", lambda t: seen.append(("checkpoint", t.step)))
    trainer.fit(progress=False)
    assert seen[-3:] == [("step", 6), ("eval", 6), ("checkpoint", 6)]
    with pytest.raises(ValueError, match="unknown event 'on_epoch'"):
        trainer.add_callback("on_epoch", print)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(batch_size=2.5), dict(lr=0), dict(schedule="linear")])
def test_bad_train_configs_are_refused(bad):
    with pytest.raises(ValueError):
        fk.TrainConfig(**bad)


def test_a_model_with_its_own_randomness_resumes_exactly(tmp_path):
    """A VAE draws its latent sample (and dropout draws its masks) from torch's global generator;
    the checkpoint keeps that generator's state too, or the resumed run would take other noise."""

    def vae_trainer(folder):
        fk.seed_everything(0)
        model = fk.models.tabular_model("vae", "power", preset="quick")
        return fk.Trainer(model, lambda n, g: torch.randn(n, 6, generator=g),
                          fk.TrainConfig(steps=10, batch_size=32, lr=1e-3, checkpoint_every=5, eval_every=5),
                          checkpoint_path=folder / "checkpoint.pt")

    straight = vae_trainer(tmp_path / "straight")
    straight.fit(progress=False)
    first = vae_trainer(tmp_path / "interrupted")
    for _ in range(5):
        first.train_step()
    first.save()
    torch.randn(100)  # whatever ran after the checkpoint drew from the global generator too
    resumed = vae_trainer(tmp_path / "interrupted").resume()
    resumed.fit(progress=False)
    assert torch.equal(parameters(resumed.model), parameters(straight.model))


# -- keep_best: end with the weights of the lowest validation loss ---------------------------

DRIFT_AT = 8  # after this many steps the training data move far from the validation data


class Interrupted(Exception):
    pass


def drifting_trainer(folder, steps=22, keep_best=True):
    """A run whose validation loss is best early: from step DRIFT_AT on it trains on the four
    circles shifted by (6, 6), while it validates on the unshifted ones. It saves a checkpoint
    at every evaluation (``eval-<step>.pt``) to compare the final weights with."""
    fk.seed_everything(0)
    model = small_plane_model("f-nsf", dtype=torch.float32)
    holder = {}

    def sample_batch(n, generator):
        x = fk.data.four_circles(n, generator=generator)
        return x if holder["trainer"].step < DRIFT_AT else x + 6.0

    config = fk.TrainConfig(steps=steps, batch_size=64, lr=3e-3, schedule="constant", eval_every=4,
                            checkpoint_every=4, keep_best=keep_best)
    trainer = fk.Trainer(model, sample_batch, config, eval_data=fk.data.four_circles(256, seed=5),
                         checkpoint_path=folder / "checkpoint.pt")
    holder["trainer"] = trainer
    trainer.add_callback("on_eval", lambda t: t.save(folder / f"eval-{t.step}.pt"))
    return trainer


def test_keep_best_ends_with_the_weights_of_the_step_of_lowest_validation_loss(tmp_path):
    trainer = drifting_trainer(tmp_path)
    trainer.fit(progress=False)
    history = trainer.history
    # evaluated every 4 steps and at the last one (22 is no multiple of 4)
    assert history["eval_step"] == [4, 8, 12, 16, 20, 22]
    lowest = min(range(len(history["eval_loss"])), key=history["eval_loss"].__getitem__)
    assert trainer.best_step == history["eval_step"][lowest] < 22  # the drift made the later steps worse
    assert trainer.best_eval_nll == history["eval_loss"][lowest] < history["eval_loss"][-1] - 1.0
    # the model holds the weights saved at that step, not the last step's
    assert torch.equal(parameters(trainer.model), parameters(fk.load(tmp_path / f"eval-{trainer.best_step}.pt")))
    assert not torch.equal(parameters(trainer.model), parameters(fk.load(tmp_path / "eval-22.pt")))
    # its validation loss, computed afresh, is the one recorded; the last checkpoint holds it too
    trainer.model.eval()
    with torch.no_grad():
        again = -trainer.model.log_prob(trainer.eval_data).mean().item()
    assert again == pytest.approx(trainer.best_eval_nll, abs=1e-5)
    assert torch.equal(parameters(fk.load(tmp_path / "checkpoint.pt")), parameters(trainer.model))
    assert trainer.metrics()["best_step"] == trainer.best_step
    assert trainer.best_summary() == {"step": trainer.best_step, "validation_loss": trainer.best_eval_nll}


def test_keep_best_survives_an_interruption_and_a_resume(tmp_path):
    straight = drifting_trainer(tmp_path / "straight")
    straight.fit(progress=False)

    first = drifting_trainer(tmp_path / "interrupted")

    def crash(trainer):
        if trainer.step == 18:  # after the checkpoint at step 16, past the best step
            raise Interrupted

    first.add_callback("on_step_end", crash)
    with pytest.raises(Interrupted):
        first.fit(progress=False)
    resumed = drifting_trainer(tmp_path / "interrupted").resume()
    assert resumed.step == 16 and resumed.best_step == straight.best_step
    resumed.fit(progress=False)
    assert resumed.best_step == straight.best_step and resumed.best_eval_nll == straight.best_eval_nll
    assert torch.equal(parameters(resumed.model), parameters(straight.model))
    # a finished run resumed has no step left, and still ends with the best weights
    again = drifting_trainer(tmp_path / "interrupted").resume()
    again.fit(progress=False)
    assert again.step == 22 and torch.equal(parameters(again.model), parameters(straight.model))


def test_without_keep_best_training_is_unchanged_and_ends_with_the_last_weights(tmp_path):
    best = drifting_trainer(tmp_path / "best")
    best.fit(progress=False)
    last = drifting_trainer(tmp_path / "last", keep_best=False)
    last.fit(progress=False)
    # keeping the best changes nothing in the training itself, only which weights it ends with
    assert last.history["loss"] == best.history["loss"]
    assert last.history["eval_loss"] == best.history["eval_loss"][:-1]
    assert last.history["eval_step"] == [4, 8, 12, 16, 20]  # no extra evaluation at the last step
    assert last.best is None and last.best_step is None and "best_step" not in last.metrics()
    assert torch.equal(parameters(last.model), parameters(fk.load(tmp_path / "best" / "eval-22.pt")))
    assert fk.TrainConfig().keep_best is False


def test_keep_best_needs_validation_data_and_a_bool():
    with pytest.raises(ValueError, match="keep_best must be True or False"):
        fk.TrainConfig(keep_best="yes")
    fk.seed_everything(0)
    with pytest.raises(ValueError, match="pass eval_data"):
        fk.Trainer(small_plane_model("f-nsf", dtype=torch.float32), sample_batch, fk.TrainConfig(keep_best=True))


# -- the GPU path, tested on the CPU: autocast, the DataLoader worker, torch.compile -----------

from funnelkit.distributed import NegativeLogLikelihood  # noqa: E402
from funnelkit.experiments.runs import dequantised, image_batches  # noqa: E402
from funnelkit.train import Speed, speed_settings, training_autocast  # noqa: E402

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make gpu-check runs it)")


def image_step(autocast, seed=0):
    """One Adam step of the quick MNIST F-NSF on a seeded batch of 5-bit digits-shaped data, under
    bfloat16 autocast or not: ``(loss, parameters after the step, gradient norm)``."""
    fk.seed_everything(seed)
    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick")
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 32
    loss_module, optimizer = NegativeLogLikelihood(model), torch.optim.Adam(model.parameters(), lr=1e-3)
    with training_autocast(torch.device("cpu")) if autocast else torch.autocast("cpu", enabled=False):
        loss = loss_module(x)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return loss, parameters(model), norm


def test_bfloat16_autocast_trains_a_step_close_to_float32():
    """The autocast of ``amp`` on the CPU's bfloat16 kernels (the Trainer allows amp on CUDA only;
    this is the same context): the loss stays float32, within 0.5% of float32's (measured: 2.4e-4),
    but is not float32's (the convolutions did run in bfloat16); the step's gradients are finite."""
    exact, exact_after, _ = image_step(autocast=False)
    loss, after, norm = image_step(autocast=True)
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(norm)
    assert loss.item() == pytest.approx(exact.item(), rel=5e-3)
    assert loss.item() != exact.item()
    assert torch.isfinite(after).all() and not torch.equal(after, exact_after)


def test_autocast_covers_the_convolutions_and_leaves_evaluation_in_float32():
    fk.seed_everything(0)
    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick")
    convolution = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    convolution.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 32
    with training_autocast("cpu"):
        model.log_prob(x)
    model.log_prob(x)  # evaluation: outside the autocast
    assert seen == [torch.bfloat16, torch.float32]


def worker_trainer(folder=None, steps=12, workers=0):
    fk.seed_everything(0)
    model = small_plane_model("f-nsf", dtype=torch.float32)
    config = fk.TrainConfig(steps=steps, batch_size=64, lr=3e-3, checkpoint_every=6, eval_every=6)
    return fk.Trainer(model, sample_batch, config, eval_data=fk.data.four_circles(256, seed=5),
                      checkpoint_path=folder / "checkpoint.pt" if folder else None, speed=Speed(workers=workers))


def test_a_dataloader_worker_draws_exactly_the_batches_of_the_loop_and_resumes_exactly(tmp_path):
    loop = worker_trainer(workers=0)
    loop.fit(progress=False)
    loop_rng = torch.get_rng_state()

    ahead = worker_trainer(tmp_path / "ahead", workers=1)
    ahead.fit(progress=False)
    assert ahead.history["loss"] == loop.history["loss"]
    assert torch.equal(parameters(ahead.model), parameters(loop.model))
    assert torch.equal(ahead.generator.get_state(), loop.generator.get_state())  # drawn ahead, yet where the loop is
    assert torch.equal(torch.get_rng_state(), loop_rng)  # the loader took nothing from torch's global generator
    assert ahead._batches is None  # the worker stopped with fit()

    first = worker_trainer(tmp_path / "interrupted", workers=1)
    for _ in range(6):
        first.train_step()  # the worker has drawn batches 7, 8, ... ahead by now
    first.save()
    first.train_step()
    resumed = worker_trainer(tmp_path / "interrupted", workers=1).resume()
    resumed.fit(progress=False)
    assert resumed.history["loss"] == loop.history["loss"]
    assert torch.equal(parameters(resumed.model), parameters(loop.model))


@pytest.mark.parametrize("bad, match", [(dict(workers=2), "workers must be 0"), (dict(workers=True), "workers"),
                                        (dict(compile="yes please".split()), "compile must be"),
                                        (dict(prefetch=0), "prefetch must be a positive int")])
def test_bad_speed_settings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        Speed(**bad)


def test_speed_settings_reach_trainers_built_inside_and_only_those():
    with speed_settings(Speed(workers=1, prefetch=2)):
        inside = make_trainer(steps=2)
    outside = make_trainer(steps=2)
    assert inside.speed == Speed(workers=1, prefetch=2) and outside.speed == Speed()
    with pytest.raises(ValueError, match="speed must be a funnelkit.train.Speed"):
        with speed_settings({"workers": 1}):
            pass


class TinyAffineFlow(torch.nn.Module):
    """A two-dimensional affine coupling with a Gaussian base: quick to compile on a CPU."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    @property
    def device(self):
        return next(self.parameters()).device

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    def log_prob(self, x):
        shift, log_scale = self.net(x[:, :1]).chunk(2, dim=1)
        z = torch.cat([x[:, :1], (x[:, 1:] - shift) * torch.exp(-log_scale)], dim=1)
        return -0.5 * (z**2).sum(1) - torch.log(torch.tensor(2 * torch.pi)) - log_scale.sum(1)


def tiny_trainer(compile):
    torch.manual_seed(0)
    return fk.Trainer(TinyAffineFlow(), sample_batch, fk.TrainConfig(steps=3, batch_size=32, lr=1e-2),
                      speed=Speed(compile=compile))


@pytest.mark.slow
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT",
                    reason="under ATEN_CPU_CAPABILITY=default (make test-kernels) inductor still writes vectorised C++ "
                           "that then fails to build ('at::vec' has not been declared): a torch limitation")
def test_a_compiled_loss_trains_as_the_eager_one():
    """torch.compile with inductor (a C++ compiler builds the kernels: about 25 s on this shared
    2-core machine for this tiny model, 5 s once inductor's cache holds them; the quick image flow
    took 70 to 300 s to compile here and ran no faster on the CPU)."""
    eager, compiled = tiny_trainer(False), tiny_trainer(True)
    eager.fit(progress=False)
    compiled.fit(progress=False)
    assert isinstance(compiled.loss_module, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.history["loss"] == pytest.approx(eager.history["loss"], rel=1e-5)
    assert torch.allclose(parameters(compiled.model), parameters(eager.model), rtol=1e-5, atol=1e-6)


# -- the same on a CUDA GPU (skipped without one; `make gpu-check` runs them: pytest -k cuda) --

@requires_cuda
def test_cuda_amp_trains_the_image_flow_in_bfloat16_and_evaluates_in_float32():
    def run(amp):
        fk.seed_everything(0)
        model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick").to("cuda")
        data = torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
        batches = image_batches(data, 5)
        eval_data = dequantised(data[:64], 5)
        trainer = fk.Trainer(model, batches, fk.TrainConfig(steps=3, batch_size=32, lr=1e-3, amp=amp, eval_every=3,
                                                            checkpoint_every=3), eval_data=eval_data)
        trainer.fit(progress=False)
        return trainer

    exact, mixed = run(False), run(True)
    assert all(torch.isfinite(torch.tensor(mixed.history["loss"])))
    assert mixed.history["loss"][0] == pytest.approx(exact.history["loss"][0], rel=5e-3)
    assert mixed.history["loss"][0] != exact.history["loss"][0]
    with torch.no_grad():
        assert mixed.model.log_prob(mixed.eval_data.cuda()).dtype == torch.float32


@requires_cuda
def test_cuda_worker_batches_are_pinned_and_train_as_the_loop():
    def run(workers):
        fk.seed_everything(0)
        model = small_plane_model("f-nsf", dtype=torch.float32).to("cuda")
        return fk.Trainer(model, sample_batch, fk.TrainConfig(steps=6, batch_size=64, lr=3e-3),
                          speed=Speed(workers=workers))

    loop, ahead = run(0), run(1)
    assert ahead._next_batch().is_pinned()
    ahead.close_batches()
    ahead.generator.manual_seed(0)
    loop.fit(progress=False)
    ahead.fit(progress=False)
    assert ahead.history["loss"] == pytest.approx(loop.history["loss"], rel=1e-6)
    assert torch.equal(ahead.generator.get_state(), loop.generator.get_state())


@requires_cuda
def test_cuda_compiled_loss_trains_as_the_eager_one():
    def run(compile):
        torch.manual_seed(0)
        return fk.Trainer(TinyAffineFlow().cuda(), sample_batch, fk.TrainConfig(steps=3, batch_size=32, lr=1e-2),
                          speed=Speed(compile=compile))

    eager, compiled = run(False), run(True)
    eager.fit(progress=False)
    compiled.fit(progress=False)
    assert compiled.history["loss"] == pytest.approx(eager.history["loss"], rel=1e-5)
