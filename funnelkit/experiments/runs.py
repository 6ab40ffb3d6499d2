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
* a finished run with fewer steps is continued to the asked total with a fresh schedule when
  ``extend`` is given (recorded in ``metrics.json``);
* a folder that holds a run with other settings is refused before anything is written, in one
  line naming the setting, both values and the way out (:func:`funnelkit.runs.plan_run`), never
  silently mixed.

The folder's files, their format and the checks belong to :mod:`funnelkit.runs`; this module
trains and evaluates.

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

import math
import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import distributed
from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, save_checkpoint
from ..data.dequantize import preprocess
from ..metrics import bits_per_dim, mean_and_error
from ..train import TrainConfig, Trainer
from ..validation import check_choice
from .results import plain

METRICS_NAME = folders.METRICS_NAME
EVALUATION_NAME = folders.EVALUATION_NAME
EVAL_SEED = 20_211_209


@dataclass
class Run:
    """A trained (or loaded) model, its metrics, and how it was obtained.

    ``status`` is "trained" (from scratch), "resumed" (continued from a checkpoint), "extended"
    (a finished run trained on with ``extend``) or "loaded" (a finished run, not trained again);
    ``arrays`` holds the per-example tensors of the evaluation (for example bits/dim per image;
    empty when the evaluation has none).
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

    Giving ``steps`` alone sets the steps of every model: a preset's separate ``vae_steps`` and
    ``model_steps`` are then dropped (give them too to keep them apart).
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
    if "steps" in overrides and "model_steps" in known and "model_steps" not in overrides:
        overrides["model_steps"] = {}
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


def train_or_load(model, sample_batch, config, out, *, evaluate=None, evaluation_key=None, validation=None,
                  progress=True, name=None, describe=None, extend=False):
    """Train ``model`` in run folder ``out`` (or load/resume/extend what is there), evaluate it, save it.

    Args:
        model: a built model (its ``config`` dict lets :func:`funnelkit.load` rebuild it), on the
            device to train on.
        sample_batch: ``sample_batch(batch_size, generator)``, e.g. :func:`image_batches`.
        config: a :class:`funnelkit.train.TrainConfig`.
        out: the run folder: ``checkpoint.pt`` (model, trainer state, metrics), ``metrics.json``
            (:mod:`funnelkit.runs`, which checks the folder first) and ``evaluation.pt`` (per-example
            values, when the evaluation gives some) are written there, under the folder's lock.
        evaluate: ``evaluate(model) -> (numbers, arrays)``: a dict of numbers and a dict of
            per-example tensors (or None).
        evaluation_key: plain values describing the evaluation (data, sizes, seeds); a finished
            run whose stored key differs is evaluated again.
        validation: data for the Trainer's periodic validation loss (optional).
        name: what the progress lines call this run; ``describe``: extra plain values stored in
            ``metrics.json`` (e.g. the data used, ``experiment``, ``result``, ``command``).
        extend: continue a finished run with fewer steps to ``config.steps`` (the new total) with a
            fresh schedule (:mod:`funnelkit.runs`, "Extensions"); recorded in ``metrics.json``.

    A folder holding another run (other model, preset, seed, data, bits, latent size or steps) is
    refused with a :class:`funnelkit.runs.RunMismatch` before anything is written. Under
    ``torchrun`` every rank trains and rank 0 alone evaluates and writes (the others return a
    Run without test numbers). Returns a :class:`Run`.
    """
    out = Path(out)
    name = name or model.config.get("name", "model")
    folders.plan_run(out, model.config, config, extend)  # refuses before anything is written
    main = distributed.is_main()
    with folders.folder_lock(out) if main else nullcontext():
        plan = folders.plan_run(out, model.config, config, extend)  # again, now that the folder is ours
        return _train_or_load(plan, model, sample_batch, config, out, evaluate, evaluation_key, validation,
                              progress, name, describe, main)


def _train_or_load(plan, model, sample_batch, config, out, evaluate, evaluation_key, validation, progress, name,
                   describe, main):
    checkpoint = out / CHECKPOINT_NAME
    stored, status, trainer = plan.stored, "trained", None
    clock = _StepClock()
    if plan.action == "load":
        _load_weights(model, plan.payload, out, name)
        status = "loaded"
    else:
        trainer = Trainer(model, sample_batch, config, validation, checkpoint)
        if plan.action == "resume":
            trainer.resume()
            status = "resumed"
        elif plan.action == "extend":
            _load_weights(model, plan.payload, out, name)
            number = len((stored or {}).get("training", {}).get("extensions", [])) + 1
            state, seed = folders.extension_state(trainer, plan.payload, plan.from_step, number)
            trainer.load_state_dict(state)
            trainer.last_good_checkpoint = plan.from_step
            stored = _start_extension(out, stored, plan.payload, model, plan.from_step, config, seed, describe)
            status = "extended"
        trainer.add_callback("on_step_end", clock)
        if progress and main:
            verb = {"resumed": f"resuming at step {trainer.step:,} of", "trained": "training",
                    "extended": f"extending from step {trainer.step:,} to"}[status]
            tqdm.write(f"{name}: {verb} {config.steps:,} steps in {out}")
        trainer.fit(progress=progress)
    model.eval()
    if not main:  # the other ranks of torchrun hold the same model: rank 0 evaluates and writes
        return Run(model, {}, status, out, {})

    key = plain(evaluation_key)
    reuse = status == "loaded" and stored is not None and stored.get("evaluation_key") == key \
        and "evaluation" in stored
    if reuse:
        numbers, arrays = stored["evaluation"], folders.read_evaluation(out)
    else:
        numbers, arrays = evaluate(model) if evaluate is not None else ({}, None)
        arrays = {k: torch.as_tensor(v).detach().cpu() for k, v in (arrays or {}).items()}
    metrics = _metrics(stored, status, trainer, config, clock, model, numbers, key, describe)
    metrics = plain(_with_run_fields(metrics, stored, status, config, describe))
    if status != "loaded":
        save_checkpoint(checkpoint, model, {"finished": True, "steps": config.steps, **numbers}, trainer.state_dict())
    if arrays and not reuse:
        folders.write_evaluation(out, arrays)
    if not (reuse and folders.metrics_unchanged(out, metrics)):  # loading a run in the current format writes nothing
        folders.write_metrics(out, metrics)
    return Run(model, metrics, status, out, arrays)


def _load_weights(model, payload, out, name):
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"the run folder {out} holds a model whose parameters do not fit this build of "
                         f"{name} (was the model changed since?): delete the folder to train anew. "
                         f"{str(error).splitlines()[0]}") from None


def _start_extension(out, stored, payload, model, from_step, config, seed, describe):
    """Record in ``metrics.json`` that the run is being extended (unfinished until the extension ends)."""
    stored = stored or folders.translate_legacy(payload.get("metrics") or {}, payload)
    training = dict(stored.get("training") or {})
    command = (describe or {}).get("command")
    training["extensions"] = [*training.get("extensions", []), {
        "from_step": from_step, "to_step": config.steps, "finished": False, "schedule": config.schedule,
        "generator_seed": seed, **({"command": f"{command} --extend"} if command else {})}]
    stored = {**stored, "finished": False, "status": "extending", "training": training}
    folders.write_metrics(out, plain(stored))
    return stored


def _with_run_fields(metrics, stored, status, config, describe):
    """Format 1's run fields: experiment, result, the extensions (the last one finished now); an
    extended run keeps the command that made it first."""
    previous = (stored or {}).get("training", {}) if status != "trained" else {}
    extensions = [dict(e, finished=e.get("finished") or e.get("to_step") == config.steps)
                  for e in previous.get("extensions", [])]
    metrics["training"]["extensions"] = extensions
    describe = dict(metrics.get("describe") or {})
    first_command = ((stored or {}).get("describe") or {}).get("command")
    if extensions and first_command:
        describe["command"] = first_command
    if describe:
        metrics["describe"] = describe
    builder = metrics["model"].get("builder")
    experiment = (describe or {}).get("experiment") or folders.EXPERIMENT_OF_BUILDER.get(builder)
    result = (describe or {}).get("result") or (stored or {}).get("result")
    return {"format": folders.FORMAT, "finished": True, "experiment": experiment, "result": result,
            **{k: v for k, v in metrics.items() if k != "finished"}}


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
    best = trainer.best_summary() if trainer is not None else previous.get("best")  # keep_best: step, loss
    if best is not None:
        training["best"] = best
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
