"""The four-circles experiment (paper Sec. 4 "Synthetic Data", Fig. 2, Fig. 5, A.5).

Train F-NSF (2-D -> 1-D) and the NSF baseline on fresh draws of four circles and compare their
test log-likelihoods, in nats with two-standard-error bars, with the true density's: the best
any model can do (about -2.870 nats at the raw scale).
"""

from dataclasses import asdict, replace
from pathlib import Path

import torch

from .. import distributed
from ..checkpoints import CHECKPOINT_NAME, load
from ..data import four_circles, four_circles_log_prob
from ..device import pick_device, seed_everything
from ..metrics import log_likelihood, mean_and_error
from ..models import plane_model
from ..paths import shipped_checkpoint, shown
from ..train import TrainConfig, Trainer
from ..validation import check_choice
from .runs import train_or_load

NAME = "four-circles"
TEST_SEED = 20_211_209  # fresh points, never drawn by a training generator
VALIDATION_SEED = 7
TEST_SIZE = 100_000  # as in the authors' evaluation

#: Training settings per preset. "paper" and "authors-code" follow the authors' plane script
#: (the paper's text gives none): batch 100, 10 epochs of 1e5 fresh points, cosine annealing.
#: "quick" is sized to train on a laptop CPU in under a minute (with one torch thread, which is
#: the fastest for these small models; see benchmarks/results/four_circles.md).
TRAIN_PRESETS = {
    "paper": TrainConfig(steps=10_000, batch_size=100, lr=1e-3),
    "authors-code": TrainConfig(steps=10_000, batch_size=100, lr=1e-3),
    "quick": TrainConfig(steps=2000, batch_size=256, lr=3e-3, eval_every=500, checkpoint_every=500),
}


def sample_batch(n, generator):
    """A fresh training batch of four circles drawn with the Trainer's generator."""
    return four_circles(n, generator=generator)


def train_config(preset="quick", **overrides):
    check_choice(preset, tuple(TRAIN_PRESETS), "preset")
    return replace(TRAIN_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


def make_trainer(model_name="f-nsf", preset="quick", out=None, device="cpu", **train_overrides):
    """A Trainer for one four-circles model (resumed if ``out`` already holds a checkpoint; no
    folder checks: :func:`train_run` is the way to train in a run folder)."""
    config = train_config(preset, **train_overrides)
    model, validation = _model_and_validation(model_name, preset, device, config)
    checkpoint = Path(out) / CHECKPOINT_NAME if out else None
    trainer = Trainer(model, sample_batch, config, validation, checkpoint)
    if checkpoint is not None and checkpoint.exists():
        trainer.resume()
    return trainer


@torch.no_grad()
def evaluate(model, n=TEST_SIZE, seed=TEST_SEED):
    """Test log-likelihood of ``model`` and of the true density on the same fresh points."""
    x = four_circles(n, seed=seed, dtype=torch.float64)
    model_ll = log_likelihood(model, x)
    true_ll = four_circles_log_prob(x)
    mean, error = mean_and_error(model_ll)
    true_mean, true_error = mean_and_error(true_ll)
    gap_mean, gap_error = mean_and_error(true_ll - model_ll)  # paired: the noise of x cancels
    return {
        "test_points": n,
        "test_seed": seed,
        "model_ll": mean,
        "model_ll_2se": error,
        "true_ll": true_mean,
        "true_ll_2se": true_error,
        "gap": gap_mean,
        "gap_2se": gap_error,
    }


def train_run(model_name="f-nsf", preset="quick", out=None, device="cpu", progress=True, extend=False, describe=None,
              **train_overrides):
    """Train (or load, resume or extend) one run in the run folder ``out``, as every experiment
    does (:func:`funnelkit.experiments.runs.train_or_load`: a folder holding another run is
    refused before anything is written). Returns the :class:`~funnelkit.experiments.runs.Run`;
    its ``metrics["evaluation"]`` holds :func:`evaluate`'s numbers.

    Under ``torchrun`` (after :func:`funnelkit.distributed.setup`) every rank trains; rank 0
    alone evaluates and writes.
    """
    config = train_config(preset, **train_overrides)
    model, validation = _model_and_validation(model_name, preset, device, config)
    return train_or_load(model, sample_batch, config, out, evaluate=lambda m: (evaluate(m), None),
                         evaluation_key={"test_points": TEST_SIZE, "test_seed": TEST_SEED}, validation=validation,
                         progress=progress, name=f"{NAME} {model_name}",
                         describe={"experiment": NAME, **(describe or {})}, extend=extend)


def _model_and_validation(model_name, preset, device, config):
    seed_everything(config.seed)
    model = plane_model(model_name, preset=preset).to(pick_device(device))
    model.config["data"] = NAME
    return model, four_circles(10_000, seed=VALIDATION_SEED)


def train(model_name="f-nsf", preset="quick", out=None, device="cpu", progress=True, **train_overrides):
    """Train one model; with ``out``, in that run folder (:func:`train_run`). Returns
    ``(model, metrics)``: ``metrics`` flat (the test numbers of :func:`evaluate`, ``train_seconds``,
    ``steps``, ``model``, ``preset``, ``experiment``, ``train_config``, ``parameters``).

    Under ``torchrun`` rank 0 alone evaluates (the other ranks return metrics without the test
    log-likelihoods).
    """
    if out is not None:
        run = train_run(model_name, preset, out, device, progress, **train_overrides)
        training = run.metrics.get("training", {})
        metrics = {**run.metrics.get("evaluation", {}), "train_seconds": training.get("train_seconds"),
                   "steps": training.get("steps"), "model": model_name, "preset": preset, "experiment": NAME,
                   "train_config": training.get("config"), "parameters": run.metrics.get("parameters")}
        run.model.metrics = metrics
        return run.model, metrics
    config = train_config(preset, **train_overrides)
    model, validation = _model_and_validation(model_name, preset, device, config)
    trainer = Trainer(model, sample_batch, config, validation)
    trainer.fit(progress=progress)
    metrics = {"train_seconds": trainer.seconds, "steps": trainer.step, "model": model_name, "preset": preset,
               "experiment": NAME, "train_config": asdict(trainer.config), "parameters": model.num_parameters()}
    if distributed.is_main():
        metrics = evaluate(model) | metrics
    model.metrics = metrics
    return model, metrics


def format_numbers(numbers):
    """The test log-likelihoods of :func:`evaluate` as four lines (model, truth, paired gap)."""
    return (
        f"test log-likelihood ({numbers['test_points']:,} points, nats, mean +- 2 s.e.)\n"
        f"  model: {numbers['model_ll']:.4f} +- {numbers['model_ll_2se']:.4f}\n"
        f"  true density: {numbers['true_ll']:.4f} +- {numbers['true_ll_2se']:.4f}\n"
        f"  gap (true - model, paired): {numbers['gap']:.4f} +- {numbers['gap_2se']:.4f}"
    )


def shipped_or_trained(model_name, preset="quick", device="cpu", progress=True):
    """``(model, source)``: the shipped run of a model (``data/runs/four-circles-<preset>/<model>``) if
    there is one, else a freshly trained model; ``source`` says which."""
    path = shipped_checkpoint(NAME, model_name, preset)
    if path.exists():
        return load(path, device=device), f"shipped checkpoint {shown(path)}"
    model, _ = train(model_name, preset, device=device, progress=progress)
    return model, f"trained now ({preset} preset)"
