"""One Trainer for every experiment: exact maximum likelihood, -mean log p(x).

Adam, cosine annealing (or a constant rate for the dashboard's open-ended live training),
gradient clipping by norm, a seeded data generator whose state travels in checkpoints (so a
resumed run continues exactly as an uninterrupted one), callbacks, periodic evaluation, atomic
checkpoints and a guard that stops on a NaN or infinite loss and keeps the last good checkpoint.
With ``keep_best`` the Trainer also keeps the weights of its best validation loss and ends with
them, as NSF's and the authors' ``uci.py`` reload their best-validation checkpoint before testing.

Under ``torchrun`` (see :mod:`funnelkit.distributed`) the same Trainer runs data-parallel: every
rank draws the same full batch of ``batch_size`` and keeps its slice, DDP averages the
gradients, and rank 0 alone writes checkpoints; the result is the single-process run's (ActNorm
initialised from the full first batch, batch norm over all ranks, a model whose training pass draws
random numbers refused).

On a GPU: ``TrainConfig(amp=True)`` trains under bfloat16 autocast (:func:`training_autocast`
says what it covers); :class:`Speed` compiles the loss with ``torch.compile`` and lets a
DataLoader worker draw the batches ahead into pinned memory. Speed settings change how fast a
run computes, not which run it is, so they are no part of :class:`TrainConfig`.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import distributed
from .checkpoints import read_checkpoint, save_checkpoint
from .locks import folder_lock
from .validation import check_positive_int

EVENTS = ("on_step_end", "on_eval", "on_checkpoint")


@dataclass
class TrainConfig:
    """Training settings; the defaults are the authors' four-circles run (A.5, their code)."""

    steps: int = 10_000
    batch_size: int = 100
    lr: float = 1e-3
    schedule: str = "cosine"  # or "constant"
    eta_min: float = 0.0
    grad_clip_norm: float = 5.0
    seed: int = 0
    eval_every: int = 1000
    checkpoint_every: int = 1000
    amp: bool = False  # bfloat16 autocast of the training forward pass, CUDA only (training_autocast)
    keep_best: bool = False  # end fit() with the weights of the lowest validation loss (needs eval_data)

    def __post_init__(self):
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            setattr(self, name, check_positive_int(getattr(self, name), name))  # a Python int: stored in checkpoints
        for name in ("amp", "keep_best"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")


@dataclass(frozen=True)
class Speed:
    """How fast a run computes, never which run it is: not stored in checkpoints or run folders,
    so a run may resume with other speed settings.

    Args:
        compile: ``False`` (eager, the default), ``True`` (``torch.compile`` with its default
            backend, inductor) or the name of a ``torch.compile`` backend (``"aot_eager"`` traces
            the graphs without generating code). The training loss (the model's ``log_prob`` and
            its mean, forward and backward) is compiled; validation, test numbers and sampling
            stay eager. The first steps take the compilation (minutes for the image flows); the
            compiled loss equals the eager one up to float32 rounding, so a compiled run is not
            bit-identical to an eager one.
        workers: 0 (the default): the training loop draws each batch. 1: a DataLoader worker
            process draws the batches ahead, ``prefetch`` of them, into page-locked (pinned)
            memory when the model is on a CUDA GPU, whose copies to the GPU then overlap the
            computation. The worker draws from a copy of the Trainer's generator and sends its
            state with every batch, so the batches, the checkpoints and a resumed run are exactly
            those of ``workers=0``. One seeded stream is drawn in order, which is why more
            workers are refused: they could not draw it faster.
        prefetch: batches the worker keeps ready (``workers=1``).
    """

    compile: object = False
    workers: int = 0
    prefetch: int = 4

    def __post_init__(self):
        if not (isinstance(self.compile, bool) or (isinstance(self.compile, str) and self.compile)):
            raise ValueError(f"compile must be True, False or the name of a torch.compile backend such as "
                             f"'inductor', got {self.compile!r}")
        if isinstance(self.workers, bool) or self.workers not in (0, 1):
            raise ValueError(f"workers must be 0 (the training loop draws the batches) or 1 (a DataLoader worker "
                             f"draws them ahead), got {self.workers!r}: one seeded stream of batches is drawn in "
                             "order, so more workers could not draw it faster")
        object.__setattr__(self, "prefetch", check_positive_int(self.prefetch, "prefetch"))  # batches drawn ahead

    @property
    def backend(self):
        """The ``torch.compile`` backend, or None for eager."""
        return None if self.compile is False else "inductor" if self.compile is True else self.compile


_SPEED = contextvars.ContextVar("funnelkit_train_speed", default=Speed())


@contextmanager
def speed_settings(speed):
    """``with speed_settings(Speed(...)):`` every :class:`Trainer` built inside without its own
    ``speed`` uses ``speed``; how ``funnelkit train --compile --workers 1`` reaches the Trainer of
    any experiment."""
    if not isinstance(speed, Speed):
        raise ValueError(f"speed must be a funnelkit.train.Speed, got {type(speed).__name__}")
    token = _SPEED.set(speed)
    try:
        yield speed
    finally:
        _SPEED.reset(token)


def training_autocast(device):
    """The bfloat16 autocast of ``TrainConfig(amp=True)`` on ``device``'s type.

    What it covers: the training forward pass only. torch runs every convolution and linear
    layer in it in bfloat16: the conditioner networks, the funnels' decoder networks and the 1x1
    convolutions, so from the first 1x1 convolution on the image flows carry their activations in
    bfloat16 too (their splines and funnels then see bfloat16 values); torch keeps reductions such
    as sums in float32, and the Trainer takes the batch mean of log p in float32
    (:class:`funnelkit.distributed.NegativeLogLikelihood`). The backward pass follows the forward's
    dtypes; parameters, gradients and Adam's state stay float32. Validation losses, test bits/dim
    and sampling never run under it: their log-densities are exact float32.
    """
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


class _SeededBatches(torch.utils.data.IterableDataset):
    """The batches of ``sample_batch`` drawn in order from a copy of a generator, each with the
    generator's state after it (what the Trainer's generator would hold after drawing it)."""

    def __init__(self, sample_batch, batch_size, generator_state):
        super().__init__()
        self.sample_batch, self.batch_size, self.generator_state = sample_batch, batch_size, generator_state

    def __iter__(self):
        generator = torch.Generator()
        generator.set_state(self.generator_state)
        while True:
            batch = self.sample_batch(self.batch_size, generator)
            yield batch, generator.get_state()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the model and checkpoint hold the last good state."""


class Trainer:
    """Train ``model`` on batches drawn by ``sample_batch(batch_size, generator)``.

    Args:
        model: a model with ``log_prob`` (a :class:`~funnelkit.models.FunnelFlow`).
        sample_batch: draws a training batch with the given ``torch.Generator``.
        config: a :class:`TrainConfig`.
        eval_data: a tensor on which to report the mean negative log-likelihood (optional).
        checkpoint_path: where to write checkpoints (optional).
        speed: a :class:`Speed` (compile, DataLoader worker); default: that of the enclosing
            :func:`speed_settings`, else eager with batches drawn in the loop.

    With ``config.keep_best`` every evaluation whose loss is the lowest so far keeps a copy of the
    weights (:attr:`best_step`, :attr:`best_eval_nll`); when :meth:`fit` reaches ``config.steps``
    (evaluating the last step too) the model gets those weights back. The copy travels in
    :meth:`state_dict`, so a resumed run keeps it.
    """

    def __init__(self, model: torch.nn.Module, sample_batch: Callable[[int, torch.Generator], torch.Tensor],
                 config: TrainConfig | None = None, eval_data: torch.Tensor | None = None,
                 checkpoint_path: str | Path | None = None, speed: Speed | None = None):
        self.model = model
        self.sample_batch = sample_batch
        self.config = config or TrainConfig()
        self.eval_data = eval_data
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.config.lr)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, self.config.steps, self.config.eta_min)
            if self.config.schedule == "cosine"
            else None
        )
        self.step = 0
        self.history = {"step": [], "loss": [], "eval_step": [], "eval_loss": []}
        self._seconds = 0.0  # wall time spent in fit() before the current call, across resumes
        self._fit_started = None
        self.last_good_checkpoint = None
        self.best = None  # keep_best: {"step", "eval_nll", "state_dict"} of the lowest validation loss
        self.callbacks = {event: [] for event in EVENTS}
        if self.config.keep_best and eval_data is None:
            raise ValueError("keep_best keeps the weights of the lowest validation loss: pass eval_data "
                             "(the validation split) too, or set keep_best=False")
        if self.config.amp and self.model.device.type != "cuda":
            raise ValueError(f"amp (bfloat16 mixed precision) is for CUDA GPUs only; the model is on "
                             f"{self.model.device}: train without amp")
        # A world of one outside torchrun; the loss goes through DDP's forward inside it.
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        distributed.check_batch_size(self.config.batch_size, self.world_size)
        self.speed = speed if speed is not None else _SPEED.get()
        if not isinstance(self.speed, Speed):
            raise ValueError(f"speed must be a funnelkit.train.Speed, got {type(self.speed).__name__}")
        self.loss_module = distributed.wrap(model)
        if self.speed.backend is not None:  # the model itself stays eager: evaluation, sampling, checkpoints
            self.loss_module = torch.compile(self.loss_module, backend=self.speed.backend)
        self._batches = None  # workers=1: the DataLoader's iterator, started at the next step

    def add_callback(self, event, fn):
        """Call ``fn(trainer)`` on ``event``: one of ``on_step_end``, ``on_eval``, ``on_checkpoint``."""
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def _fire(self, event):
        for fn in self.callbacks[event]:
            fn(self)

    # -- one step ---------------------------------------------------------------------------
    def train_step(self):
        """One Adam step on a fresh batch; returns the loss (mean negative log-likelihood)."""
        self.model.train()
        x = self._next_batch()  # the same full batch on every rank
        if self.world_size > 1:  # ActNorm's first batch is the full one, as in one process
            with training_autocast(self.model.device) if self.config.amp else nullcontext():
                distributed.initialise_from_full_batch(self.model, x)
            x = distributed.shard(x, self.rank, self.world_size)
        x = x.to(device=self.model.device, dtype=self.model.dtype, non_blocking=True)
        with training_autocast(self.model.device) if self.config.amp else nullcontext():
            loss = self.loss_module(x)
        if self.world_size > 1:  # the full batch's loss, on every rank: all stop together on a NaN
            full = loss.detach().clone()
            torch.distributed.all_reduce(full)
            full /= self.world_size
        else:
            full = loss.detach()
        if not torch.isfinite(full):
            where = (
                f"the last good checkpoint (step {self.last_good_checkpoint}) is kept at {self.checkpoint_path}"
                if self.last_good_checkpoint is not None
                else "no checkpoint was written yet"
            )
            raise TrainingDiverged(
                f"the loss became {full.item()} at step {self.step + 1}; training stopped before "
                f"updating the model, and {where}. Try a lower learning rate (lr={self.config.lr}) "
                f"or stronger gradient clipping (grad_clip_norm={self.config.grad_clip_norm})."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler.last_epoch < self.config.steps:
            self.scheduler.step()
        self.step += 1
        self.history["step"].append(self.step)
        self.history["loss"].append(full.item())
        self._fire("on_step_end")
        return full.item()

    def _next_batch(self):
        """The next training batch; with ``speed.workers`` the DataLoader's, the generator set to
        the state it has after that batch (as if the Trainer had drawn it)."""
        if self.speed.workers == 0:
            return self.sample_batch(self.config.batch_size, self.generator)
        if self._batches is None:
            stream = _SeededBatches(self.sample_batch, self.config.batch_size, self.generator.get_state())
            # generator: the workers' seeds come from it, not from torch's global generator (the model's)
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=self.speed.workers,
                                                 prefetch_factor=self.speed.prefetch,
                                                 pin_memory=self.model.device.type == "cuda",
                                                 generator=torch.Generator().manual_seed(0))
            self._batches = iter(loader)
        batch, state = next(self._batches)
        self.generator.set_state(state)
        return batch

    def close_batches(self):
        """Stop the DataLoader worker (``speed.workers``); the next step starts a new one where the
        generator stands."""
        self._batches = None

    # -- loops ------------------------------------------------------------------------------
    def fit(self, progress: bool = True) -> dict:
        """Train until ``config.steps``, evaluating and checkpointing along the way."""
        progress = progress and self.rank == 0
        bar = tqdm(total=self.config.steps, initial=self.step, disable=not progress, desc="train")
        self._fit_started = time.perf_counter()
        lock = ExitStack()  # one writer per checkpoint folder (funnelkit.locks); released in the finally below
        if self.checkpoint_path and self.rank == 0:
            lock.enter_context(folder_lock(self.checkpoint_path.parent))
        try:
            while self.step < self.config.steps:
                loss = self.train_step()
                bar.update(1)
                if self.step % 25 == 0:
                    bar.set_postfix(nll=f"{loss:.3f}")
                last = self.step == self.config.steps
                if self.eval_data is not None and (self.step % self.config.eval_every == 0
                                                   or (last and self.config.keep_best)):
                    self.evaluate()
                if last:
                    self.restore_best()  # before the last checkpoint, so that it holds what the model holds
                if self.checkpoint_path and (
                    self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps
                ):
                    self.save()
            self.restore_best()  # also when a resumed run had no step left
        finally:
            self._seconds = self.seconds
            self._fit_started = None
            self.close_batches()
            bar.close()
            lock.close()
        return self.history

    @property
    def seconds(self):
        """Wall seconds spent in :meth:`fit` so far (evaluations and checkpoints included), carried
        over from the checkpoint when a run is resumed."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self._seconds + running

    def train_for(self, seconds: float, max_steps: int | None = None) -> int:
        """Train for about ``seconds`` of wall time (at least one step); returns the steps taken."""
        start, taken = time.perf_counter(), 0
        while taken == 0 or time.perf_counter() - start < seconds:
            if max_steps is not None and taken >= max_steps:
                break
            self.train_step()
            taken += 1
        return taken

    @torch.no_grad()
    def evaluate(self, batch_size=10_000):
        """Mean negative log-likelihood on ``eval_data`` (nats), recorded in the history."""
        self.model.eval()
        data = self.eval_data.to(device=self.model.device, dtype=self.model.dtype)
        nll = -torch.cat([self.model.log_prob(chunk) for chunk in data.split(batch_size)]).mean().item()
        self.history["eval_step"].append(self.step)
        self.history["eval_loss"].append(nll)
        if self.config.keep_best and math.isfinite(nll) and (self.best is None or nll < self.best["eval_nll"]):
            self.best = {"step": self.step, "eval_nll": nll,
                         "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}
        self._fire("on_eval")
        return nll

    # -- the best model (keep_best) -----------------------------------------------------------
    @property
    def best_step(self):
        """The step of the lowest validation loss so far (keep_best), or None."""
        return self.best["step"] if self.best is not None else None

    @property
    def best_eval_nll(self):
        """The lowest validation loss so far (mean negative log-likelihood, nats; keep_best), or None."""
        return self.best["eval_nll"] if self.best is not None else None

    def best_summary(self):
        """``{"step", "validation_loss"}`` of the kept best model, or None (keep_best off, or no evaluation)."""
        return None if self.best is None else {"step": self.best["step"], "validation_loss": self.best["eval_nll"]}

    def restore_best(self):
        """Give the model the kept best weights (keep_best; nothing otherwise); returns the best step."""
        if self.config.keep_best and self.best is not None:
            self.model.load_state_dict(self.best["state_dict"])
        return self.best_step

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self):
        return {
            "config": asdict(self.config),
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "generator": self.generator.get_state(),
            # the model's own randomness (dropout, a VAE's latent sample) draws from torch's global
            # generators: keep them too, so that a resumed run ends as the uninterrupted one
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "seconds": self.seconds,
            "history": {k: list(v) for k, v in self.history.items()},
            "best": self.best,
        }

    def load_state_dict(self, state):
        self.close_batches()  # batches drawn ahead from the old generator state are not this run's
        self.step = state["step"]
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self._seconds = float(state.get("seconds", 0.0))
        if state.get("torch_rng") is not None:  # absent in checkpoints written before it was kept
            torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.best = state.get("best")  # absent in checkpoints written before keep_best

    def metrics(self):
        out = {"step": self.step}
        if self.history["loss"]:
            out["train_nll"] = self.history["loss"][-1]
        if self.history["eval_loss"]:
            out["eval_nll"] = self.history["eval_loss"][-1]
        if self.best is not None:
            out["best_step"], out["best_eval_nll"] = self.best["step"], self.best["eval_nll"]
        return out

    def save(self, path=None):
        """Write a checkpoint (model, metrics, trainer state) atomically; on rank 0 only.

        Under DDP the model, optimizer and generator are the same on every rank, so the other
        ranks write nothing (and return None).
        """
        path = Path(path) if path else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: pass one here or to Trainer(checkpoint_path=...)")
        if self.rank != 0:
            if path == self.checkpoint_path:
                self.last_good_checkpoint = self.step
            return None
        save_checkpoint(path, self.model, self.metrics(), self.state_dict())
        if path == self.checkpoint_path:
            self.last_good_checkpoint = self.step
        self._fire("on_checkpoint")
        return path

    def resume(self, path: str | Path | None = None) -> Trainer:
        """Load model and trainer state from a checkpoint written by :meth:`save`."""
        payload = read_checkpoint(path or self.checkpoint_path)
        if payload.get("trainer") is None:
            raise ValueError(f"{path or self.checkpoint_path} holds no trainer state to resume from")
        if "optimizer" not in payload["trainer"]:
            raise ValueError(f"{path or self.checkpoint_path} is a shipped run (no optimiser state; "
                             "funnelkit.experiments.shipped): it loads as a finished run but cannot resume. "
                             "Train in another folder to train longer.")
        self.model.load_state_dict(payload["state_dict"])
        self.load_state_dict(payload["trainer"])
        self.last_good_checkpoint = self.step
        return self
