"""The last good states of a live run, so that a run that breaks down can step back to one.

At a high learning rate (0.3 and above, measured on the dashboard's models) Adam drives the
splines' bin widths and slopes to extremes within a few dozen steps. The loss may stay finite,
but drawing samples then fails inside nflows (``assert (discriminant >= 0).all()`` in the
inverse of the rational-quadratic spline), or the loss becomes NaN and the
:class:`~funnelkit.train.Trainer` stops with :class:`~funnelkit.train.TrainingDiverged`.

:class:`GoodStates` keeps copies of the model and the trainer (weights, Adam's moments, the data
generator, the length of the loss history) taken after good ticks: the few newest ones and the
state the run started from. :meth:`GoodStates.restore` puts the newest one from before a given
step back, so the run continues as if the failed steps had never been taken.
"""

import copy
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch
from nflows.transforms.base import InputOutsideDomain

from ..train import TrainingDiverged

#: What a training step or a picture raises when the model's numbers have broken down: nflows'
#: internal checks (``AssertionError``, ``InputOutsideDomain``), torch's maths (``RuntimeError``,
#: ``ValueError``, also a kit check that meets NaN), and the Trainer's
#: :class:`~funnelkit.train.TrainingDiverged` (a ``RuntimeError``).
BREAKDOWN_ERRORS = (AssertionError, ArithmeticError, RuntimeError, ValueError, InputOutsideDomain)


@dataclass
class TrainerState:
    """A copy of everything a live step changes: weights, optimiser, data generator, step, history."""

    step: int
    model: dict
    optimizer: dict
    scheduler: dict | None
    generator: torch.Tensor
    history_lengths: dict

    @classmethod
    def take(cls, trainer):
        return cls(
            step=trainer.step,
            model={k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            optimizer=_copied(trainer.optimizer.state_dict()),
            scheduler=copy.deepcopy(trainer.scheduler.state_dict()) if trainer.scheduler else None,
            generator=trainer.generator.get_state(),
            history_lengths={k: len(v) for k, v in trainer.history.items()},
        )

    def restore(self, trainer):
        """Put this state back into ``trainer`` (and its model); the learning rates chosen since stay."""
        rates = [group["lr"] for group in trainer.optimizer.param_groups]
        trainer.model.load_state_dict(self.model)
        # A copy: Optimizer.load_state_dict keeps the given tensors, and Adam updates them in place.
        trainer.optimizer.load_state_dict(_copied(self.optimizer))
        for group, rate in zip(trainer.optimizer.param_groups, rates):
            group["lr"] = rate
        if trainer.scheduler is not None and self.scheduler is not None:
            trainer.scheduler.load_state_dict(copy.deepcopy(self.scheduler))
        trainer.generator.set_state(self.generator)
        trainer.step = self.step
        for name, length in self.history_lengths.items():  # the lists only grow between states
            del trainer.history[name][length:]


def _copied(optimizer_state):
    """An optimiser's ``state_dict`` with its tensors cloned (8 times faster than ``copy.deepcopy``)."""
    return {
        "state": {key: {name: value.clone() if torch.is_tensor(value) else copy.deepcopy(value)
                        for name, value in entry.items()}
                  for key, entry in optimizer_state["state"].items()},
        "param_groups": copy.deepcopy(optimizer_state["param_groups"]),
    }


class GoodStates:
    """The state a run started from and the ``keep`` newest good states after it."""

    def __init__(self, trainer, keep=3):
        self.trainer = trainer
        self.origin = TrainerState.take(trainer)
        self.recent = deque(maxlen=keep)

    def save(self):
        """Keep the trainer's current state as good (replacing one kept at the same step)."""
        if self.recent and self.recent[-1].step == self.trainer.step:
            self.recent.pop()
        if self.trainer.step != self.origin.step:
            self.recent.append(TrainerState.take(self.trainer))

    def restore(self, before):
        """Restore the newest kept state from a step before ``before``; returns its step.

        States at ``before`` or later are dropped (they are the ones that failed). Returns
        ``None``, restoring nothing, when even the starting state is not from before ``before``.
        """
        while self.recent and self.recent[-1].step >= before:
            self.recent.pop()
        state = self.recent[-1] if self.recent else self.origin
        if state.step >= before:
            return None
        state.restore(self.trainer)
        return state.step


def model_is_finite(model):
    """True when every weight of ``model`` is a finite number."""
    checks = [torch.isfinite(p).all() for p in model.parameters()]
    return bool(torch.stack(checks).all()) if checks else True


def describe(error):
    """A short account of a breakdown error for a message: its type, and where or what it says."""
    if isinstance(error, TrainingDiverged):
        return str(error).split(" at step")[0]  # "the loss became nan"
    text = " ".join(str(error).split())
    if text:
        return f"{type(error).__name__}: {text[:160]}"
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    parts = Path(last.filename).parts
    where = "/".join(parts[parts.index("nflows"):]) if "nflows" in parts else Path(last.filename).name
    return f"{type(error).__name__} in {where}: {last.line}"
