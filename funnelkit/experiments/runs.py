"""The training run every result uses, and batched evaluation in nats and bits per dimension.

:func:`train_or_load` trains one model with :class:`funnelkit.train.Trainer` (exact maximum
likelihood, -mean log p(x); a VAE maximises its ELBO) in a run folder ``out``:

* a finished run there (``metrics.json`` says so and ``checkpoint.pt`` holds the final step) is
  loaded, not trained again;
* an unfinished one (a checkpoint from an interrupted run) is resumed where it stopped: the
  Trainer's checkpoints carry the optimiser, the schedule and the data generator, so a model
  without randomness of its own ends as the uninterrupted run. Dropout and a VAE's sampled
  latent draw from torch's global generator, which the checkpoints do not carry: those models
  resume with other noise and end close to, not exactly at, the uninterrupted run;
* a folder that holds a different model or different training settings is an error (it names
  both), never silently mixed.

Then the model is evaluated by the caller's ``evaluate(model)``, which returns a dict of numbers
and, optionally, per-example tensors; both are stored in the run folder with the settings of
the evaluation, so loading a finished run reuses them unless those settings changed.

Training data: images are uint8 ``(N, C, H, W)`` reduced to ``bits`` and dequantised afresh for
every batch with the Trainer's generator (:func:`funnelkit.data.dequantize.preprocess`), so a
resumed run draws the same noise; tabular rows are float tensors. Batches are drawn uniformly
with replacement (not in epochs), which keeps the whole data stream in the generator's state.
No augmentation (the authors' code flips CIFAR-10 images horizontally; the paper does not say so).

Test numbers use a fixed dequantisation noise (seed ``EVAL_SEED``) and, for a VAE, a seeded
single-sample ELBO, so they are repeatable. Error bars are two standard errors, 2 s / sqrt(N).
"""

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..checkpoints import CHECKPOINT_NAME, read_checkpoint, save_checkpoint
from ..data.dequantize import preprocess
from ..files import write_atomically
from ..metrics import bits_per_dim, mean_and_error
from ..train import TrainConfig, Trainer
from ..validation import check_choice
from .results import _plain, write_text

METRICS_NAME = "metrics.json"
EVALUATION_NAME = "evaluation.pt"
EVAL_SEED = 20_211_209


@dataclass
class Run:
    """A trained (or loaded) model, its metrics, and how it was obtained.

    ``status`` is "trained" (from scratch), "resumed" (continued from a checkpoint) or
    "loaded" (a finished run, not trained again); ``arrays`` holds the per-example tensors of
    the evaluation (for example bits/dim per image).
    """

    model: object
    metrics: dict
    status: str
    out: Path
    arrays: dict


# --------------------------------------------------------------------------------------------
# Settings and folders
# --------------------------------------------------------------------------------------------

def choose_settings(presets, preset, overrides, result):
    """``presets[preset]`` (a dataclass) with ``overrides`` applied; unknown names are a ValueError.

    Giving ``steps`` alone sets the steps of every model: a preset's separate ``vae_steps`` is
    then dropped (give both to keep them apart).
    """
    check_choice(preset, tuple(presets), "preset")
    known = [f.name for f in fields(presets[preset])]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown setting {', '.join(map(repr, unknown))} for {result}; expected some of "
                         f"{', '.join(known)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "steps" in overrides and "vae_steps" in known and "vae_steps" not in overrides:
        overrides["vae_steps"] = None
    return replace(presets[preset], **overrides)


def runs_folder(runs, result, preset):
    """The folder holding a result's run folders: ``<runs>/<result>-<preset>`` (``runs`` default ``runs``)."""
    return Path(runs if runs is not None else "runs") / f"{result}-{preset}"


def train_config(steps, batch_size, lr, **extra):
    """A :class:`TrainConfig` with evaluation about ten times a run and checkpoints every 1,000
    steps at most (a fifth of a short run), so an interrupted run loses little."""
    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, eval_every=max(1, min(5000, steps // 10)),
                       checkpoint_every=max(1, min(1000, steps // 5)), **extra)


# --------------------------------------------------------------------------------------------
# Data streams
# --------------------------------------------------------------------------------------------

def held_out_split(n, n_held_out, seed):
    """Indices ``(train, held_out)`` of a fixed random split of ``range(n)``."""
    if not 0 < n_held_out < n:
        raise ValueError(f"the held-out part must have between 1 and {n - 1} of the {n} examples, got {n_held_out}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_held_out:], order[:n_held_out]


def image_batches(images, bits, index=None):
    """``sample_batch(n, generator)``: n images drawn with replacement, reduced to ``bits`` and
    dequantised with the generator's noise; values in [0, 2**bits).

    ``index`` (optional) restricts the draws to those rows of ``images``, so a training split
    of a large set needs no copy of its images.
    """
    _check_uint8_images(images)
    if index is not None:
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() != 1 or len(index) == 0 or index.min() < 0 or index.max() >= len(images):
            raise ValueError(f"index must be a non-empty 1-D tensor of rows in [0, {len(images)}), got {index}")

    def sample_batch(n, generator):
        rows = torch.randint(len(images) if index is None else len(index), (n,), generator=generator)
        return preprocess(images[rows if index is None else index[rows]], bits, generator=generator)

    return sample_batch


def row_batches(rows):
    """``sample_batch(n, generator)``: n rows of a float tensor drawn with replacement."""
    if not torch.is_tensor(rows) or rows.dim() != 2 or not rows.is_floating_point():
        raise ValueError(f"rows must be a float tensor of shape (N, D), got "
                         f"{getattr(rows, 'dtype', type(rows).__name__)} {tuple(getattr(rows, 'shape', ()))}")

    def sample_batch(n, generator):
        return rows[torch.randint(len(rows), (n,), generator=generator)]

    return sample_batch


def _check_uint8_images(images):
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be a uint8 tensor of shape (N, C, H, W), got "
                         f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}")


def dequantised(images, bits, seed=EVAL_SEED):
    """Test images reduced to ``bits`` and dequantised with a fixed noise (seed ``seed``)."""
    _check_uint8_images(images)
    return preprocess(images, bits, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def log_likelihoods(model, x, batch_size=1000, seed=EVAL_SEED, progress=False, desc="evaluate"):
    """Per-example log p(x) (a VAE: its single-sample ELBO, seeded), in eval mode, shape (n,)."""
    model.eval()
    torch.manual_seed(seed)  # the VAE's ELBO draws a sample; flows ignore this
    chunks = x.split(batch_size)
    out = []
    for chunk in tqdm(chunks, desc=desc, disable=not progress or len(chunks) < 2, leave=False):
        out.append(model.log_prob(chunk.to(device=model.device, dtype=model.dtype)).cpu())
    return torch.cat(out).to(torch.float64)


def nats(model, x, batch_size=10_000, seed=EVAL_SEED, progress=False):
    """Test log-likelihood in nats: ``{"ll", "ll_2se", "n"}`` (mean and two standard errors)."""
    values = log_likelihoods(model, x, batch_size, seed, progress)
    mean, error = mean_and_error(values)
    return {"ll": mean, "ll_2se": error, "n": len(values)}


def per_example_bpd(model, images, bits, batch_size=500, seed=EVAL_SEED, progress=False, desc="evaluate"):
    """Bits/dim of every uint8 image (reduced to ``bits``, dequantised with a fixed noise), float64 (n,).

    The models' log p is a density of u in [0, 2**bits)^D, so bpd = -log p(u) / (D ln 2)
    (:func:`funnelkit.metrics.bits_per_dim`). For a VAE this is an upper bound.
    """
    u = dequantised(images, bits, seed)
    return bits_per_dim(log_likelihoods(model, u, batch_size, seed, progress, desc), math.prod(images.shape[1:]))


def bpd_summary(values):
    """``{"bpd", "bpd_2se", "n"}`` of per-example bits/dim."""
    mean, error = mean_and_error(values)
    return {"bpd": mean, "bpd_2se": error, "n": len(values)}


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------

class _StepClock:
    """Times the training steps: the median gap between consecutive step ends skips the pauses
    for evaluation and checkpoints."""

    def __init__(self):
        self.ends = []

    def __call__(self, trainer):
        self.ends.append(time.perf_counter())

    def seconds_per_step(self):
        gaps = [b - a for a, b in zip(self.ends[:-1], self.ends[1:])]
        return statistics.median(gaps) if gaps else None


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _check_same_run(out, payload, model, config):
    saved_model = _plain(payload.get("config", {}))
    asked_model = _plain(dict(model.config))
    saved_train = _plain((payload.get("trainer") or {}).get("config"))
    asked_train = _plain(asdict(config))
    for what, saved, asked in (("model", saved_model, asked_model), ("training settings", saved_train, asked_train)):
        if saved != asked:
            raise ValueError(
                f"the run folder {out} holds another run: its {what} are {saved}, but this asks for {asked}. "
                "Use another folder (reproduce --runs, train --out) or delete that one to train anew."
            )


def train_or_load(model, sample_batch, config, out, *, evaluate=None, evaluation_key=None, validation=None,
                  progress=True, name=None, describe=None):
    """Train ``model`` in run folder ``out`` (or load/resume what is there), evaluate it, save it.

    Args:
        model: a built model (its ``config`` dict lets :func:`funnelkit.load` rebuild it), on the
            device to train on.
        sample_batch: ``sample_batch(batch_size, generator)``, e.g. :func:`image_batches`.
        config: a :class:`funnelkit.train.TrainConfig`.
        out: the run folder: ``checkpoint.pt`` (model, trainer state, metrics), ``metrics.json``
            and ``evaluation.pt`` (per-example values) are written there.
        evaluate: ``evaluate(model) -> (numbers, arrays)``: a dict of numbers and a dict of
            per-example tensors (or None).
        evaluation_key: plain values describing the evaluation (data, sizes, seeds); a finished
            run whose stored key differs is evaluated again.
        validation: data for the Trainer's periodic validation loss (optional).
        name: what the progress lines call this run; ``describe``: extra plain values stored in
            ``metrics.json`` (e.g. the data used).

    Returns a :class:`Run`.
    """
    out = Path(out)
    checkpoint = out / CHECKPOINT_NAME
    name = name or model.config.get("name", "model")
    stored = read_json(out / METRICS_NAME) if checkpoint.is_file() else None
    status = "trained"
    clock = _StepClock()
    if checkpoint.is_file():
        payload = read_checkpoint(checkpoint)
        _check_same_run(out, payload, model, config)
        finished = (stored or {}).get("finished") and (payload.get("trainer") or {}).get("step") == config.steps
        if finished:
            try:
                model.load_state_dict(payload["state_dict"])
            except RuntimeError as error:
                raise ValueError(f"the run folder {out} holds a model whose parameters do not fit this build of "
                                 f"{name} (was the model changed since?): delete the folder to train anew. {error}") from None
            status = "loaded"
            trainer = None
    if status != "loaded":
        trainer = Trainer(model, sample_batch, config, validation, checkpoint)
        if checkpoint.is_file():
            trainer.resume()
            status = "resumed"
        trainer.add_callback("on_step_end", clock)
        if progress:
            verb = f"resuming at step {trainer.step:,} of" if status == "resumed" else "training"
            tqdm.write(f"{name}: {verb} {config.steps:,} steps in {out}")
        trainer.fit(progress=progress)
    model.eval()

    key = _plain(evaluation_key)
    arrays = {}
    if status == "loaded" and stored.get("evaluation_key") == key and (out / EVALUATION_NAME).is_file() \
            and "evaluation" in stored:
        numbers = stored["evaluation"]
        arrays = torch.load(out / EVALUATION_NAME, map_location="cpu", weights_only=True)
    else:
        numbers, arrays = evaluate(model) if evaluate is not None else ({}, None)
        arrays = {k: torch.as_tensor(v).detach().cpu() for k, v in (arrays or {}).items()}
    metrics = _metrics(stored, status, trainer, config, clock, model, numbers, key, describe)
    if status != "loaded":
        save_checkpoint(checkpoint, model, {"finished": True, **numbers}, trainer.state_dict())
    write_atomically(out / EVALUATION_NAME, lambda file: torch.save(arrays, file))
    write_text(out / METRICS_NAME, json.dumps(_plain(metrics), indent=2, allow_nan=False) + "\n")
    return Run(model, metrics, status, out, arrays)


def _metrics(stored, status, trainer, config, clock, model, numbers, key, describe):
    previous = (stored or {}).get("training", {}) if status != "trained" else {}
    seconds_per_step = clock.seconds_per_step()
    if seconds_per_step is None:  # loaded, or resumed with nothing left to do
        seconds_per_step = previous.get("seconds_per_step")
    history = trainer.history if trainer is not None else None
    training = {
        "steps": config.steps,
        "config": asdict(config),
        "seconds_per_step": seconds_per_step,
        "train_seconds": trainer.seconds if trainer is not None else previous.get("train_seconds", 0.0),
        "final_train_loss": history["loss"][-1] if history and history["loss"] else previous.get("final_train_loss"),
        "final_validation_loss": (history["eval_loss"][-1] if history and history["eval_loss"]
                                  else previous.get("final_validation_loss")),
    }
    return {
        "finished": True,
        "model": dict(model.config),
        "parameters": model.num_parameters(),
        "latent_dim": model.latent_dim,
        "exact": bool(getattr(model, "exact", True)),
        "status": status,
        "training": training,
        "evaluation_key": key,
        "evaluation": numbers,
        **({"describe": describe} if describe else {}),
    }


__all__ = ["EVAL_SEED", "Run", "bpd_summary", "choose_settings", "dequantised", "held_out_split", "image_batches",
           "log_likelihoods", "nats", "per_example_bpd", "row_batches", "runs_folder", "train_config",
           "train_or_load"]
