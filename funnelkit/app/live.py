"""The state of a live training session on a 2-D toy, independent of any user interface.

The dashboard (``app.py``) keeps one :class:`LiveRun` per browser session and drives it in
short, time-boxed ticks, as TensorFlow Playground does with its ``Player``:

    settings = LiveSettings(dataset="two-moons", model="f-nsf", hidden_features=32)
    run = LiveRun.create(settings)           # a fresh model (or the shipped one, see below)
    run.tick(0.3)                            # about 0.3 s of Adam steps
    run.iteration, run.trainer.history["loss"]
    view = run.pictures(resolution=100)      # density grid, samples, data: plain numpy

The settings are :class:`funnelkit.app.live_settings.LiveSettings` (checked, and to and from the URL);
what the per-layer views show is computed by :mod:`funnelkit.models.inspection` (Eq. 6 layer by layer).

On four circles with the ``quick`` architecture, :meth:`LiveRun.create` starts from the
checkpoint shipped in ``data/runs/four-circles-quick`` when there is one, so a trained model shows at once.

A run never raises into the page when its maths break down (a learning rate of 0.3 or more can
make the splines so steep within a few dozen steps that drawing samples fails inside nflows, or the
loss turns NaN): it steps back to its last good state (:mod:`funnelkit.app.live_recovery`), pauses, and
says so in :attr:`LiveRun.message`; :meth:`LiveRun.play` lets it train again. An error nobody
expected (a bug, memory running out) is the page's to catch: :meth:`LiveRun.fail` then steps back and
pauses the same way, with a message. :class:`Paced` decides when a page makes its slow pictures again
while the run trains.
"""

import copy
import functools
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..checkpoints import read_checkpoint
from ..data import four_circles_log_prob, toy
from ..device import pick_device, seeded
from ..grid import grid_log_prob
from ..metrics import ks_statistic
from ..models import plane_model
from ..models.inspection import FunnelInside, eq6_table, funnel_inside, layer_stages
from ..paths import shown
from ..train import TrainConfig, Trainer
from ..validation import check_positive_int
from .frames import Opening, Pictures, recent_loss
from .live_recovery import BREAKDOWN_ERRORS, GoodStates, describe, model_is_finite
from .live_settings import PRESET, PRESETS, SHIPPED_CONTINUE_LR, LiveSettings

BOUNDS = (-4.0, 4.0)  # the square shown in every 2-D picture
OPEN_ENDED_STEPS = 10**9  # live training has no planned end; the schedule is constant
VIEW_SEED = 12_345  # the points drawn for pictures (never the training stream)

# ------------------------------------------------------------------------------------------------
@dataclass
class LatentView:
    """Encoded data against N(0, 1): ``z`` is ``(n, latent_dim)``; ``ks[i]`` for latent i."""

    step: int
    z: np.ndarray
    ks: list


class Paced:
    """A slow view of a run that trains (pictures, and the figures made from them), made again only
    when it is due, so that drawing takes at most about ``share`` of the time and training the rest.

    While the run trains, :meth:`get` gives the last view until it is older than
    ``cost * (1 / share - 1)`` (its making time ``cost``: three times that for the default quarter);
    a view of another model (``identity`` differs: a new, loaded or restored one) or any view when not
    ``paced`` (the run is paused: show exactly what it is) is made at once. With ``make_due=False`` a
    view that is due is not made either (a page shows what it has first, and makes the next view after).
    """

    def __init__(self, share=0.25):
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self.share = share
        self.key = None  # (identity, step) of the view kept
        self.value = None
        self.made_at = -math.inf
        self.cost = 0.0  # seconds the last making took

    def due(self, identity, step, paced=True, make_due=True):
        """Whether the view for ``(identity, step)`` must be made now (see the class)."""
        if self.key is None or self.key[0] != identity or not paced:
            return self.key != (identity, step)
        if self.key[1] == step or not make_due:
            return False
        return time.monotonic() - self.made_at >= self.cost * (1 / self.share - 1)

    def get(self, identity, step, make, paced=True, make_due=True):
        """The view for ``(identity, step)``: ``make()``'s value when due, else the one kept."""
        if self.due(identity, step, paced, make_due):
            start = time.monotonic()
            value = make()
            self.made_at = time.monotonic()
            self.key, self.value, self.cost = (identity, step), value, self.made_at - start
        return self.value


class LiveRun:
    """One model, its Trainer and the pictures of it, for one dashboard session.

    Use :meth:`create` rather than the constructor.
    """

    def __init__(self, settings, device="cpu"):
        if not isinstance(settings, LiveSettings):
            raise ValueError(f"settings must be LiveSettings, got {type(settings).__name__}")
        self.settings = settings
        self.device = pick_device(device)
        self.source = "fresh"
        self._cache = {}
        self.generation = 0  # see state_key
        self._tick_steps = 0
        self._tick_seconds = 0.0
        self.message = None  # why the run paused itself (a breakdown it recovered from), or None
        self.paused = False  # True after such a recovery, until play()
        self._build()

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def create(cls, settings=None, device="cpu", pretrained=True):
        """A run for ``settings``; from the shipped checkpoint when ``pretrained`` and one exists."""
        run = cls(settings or LiveSettings(), device)
        if pretrained and run.settings.pretrained_path() is not None:
            run.load_pretrained()
        return run

    def _build(self, settings=None, device=None):
        """A fresh model and Trainer for ``settings`` on ``device`` (by default the run's own). All or
        nothing: if building raises, the run keeps its settings, model and training."""
        s = self.settings if settings is None else settings
        device = self.device if device is None else device
        torch.manual_seed(s.seed)  # the model's initial weights follow the seed
        model = plane_model(s.model, preset=PRESET, **s.plane_overrides()).to(device)
        model.config["data"] = s.dataset
        dataset = s.dataset

        def sample_batch(n, generator):
            return toy(dataset, n, generator=generator)

        config = TrainConfig(steps=OPEN_ENDED_STEPS, batch_size=s.batch_size, lr=s.lr, schedule="constant", seed=s.seed)
        trainer = Trainer(model, sample_batch, config)
        good = GoodStates(trainer)
        self.settings, self.device, self.model, self.trainer, self._good = s, device, model, trainer, good
        self.source = "fresh"
        self._new_weights()
        self._tick_steps, self._tick_seconds = 0, 0.0
        self.play()

    def _new_weights(self):
        """The model's weights changed other than by training forward (built, loaded, restored)."""
        self.generation += 1
        self._cache.clear()

    @property
    def state_key(self):
        """``(generation, iteration)``: equal keys mean the same weights, so a picture made at one key
        shows the model at the other (a new model, a loaded one or a restored one starts a generation)."""
        return self.generation, self.iteration

    def reset(self):
        """A fresh, untrained model with the same settings (the same seed gives the same start)."""
        self._build()
        return self

    def load_pretrained(self):
        """Continue from the shipped checkpoint of these settings; raises ``ValueError`` if none."""
        path = self.settings.pretrained_path()
        if path is None:
            raise ValueError(
                "no shipped checkpoint for these settings: checkpoints are shipped for four circles "
                f"with {PRESETS[PRESET].hidden_features} hidden units and {PRESETS[PRESET].num_bins} bins "
                f"(expected at {self.settings.shipped_path()})"
            )
        payload = _read_shipped(path)
        self._build()
        self.model.load_state_dict(payload["state_dict"])
        self._new_weights()
        if payload.get("trainer"):
            self.trainer.load_state_dict(payload["trainer"])  # its step, Adam's moments, its history
            self._set_lr(self.continue_lr())  # a constant rate, not the checkpoint's annealed one
        self.source = f"shipped checkpoint {shown(path)}"
        self._good = GoodStates(self.trainer)  # the run starts from here
        opening = _OPENING_PICTURES.get(_opening_key(path, self.device, self.settings.seed))
        if opening is not None and opening.step == self.iteration:  # drawn before, for another session
            self._cache["pictures"] = opening.entry()
        return self

    def continue_lr(self):
        """The rate a shipped model goes on at (:func:`continue_lr`)."""
        return continue_lr(self.settings)

    @property
    def lr(self):
        """The learning rate training goes on at now."""
        return self.trainer.optimizer.param_groups[0]["lr"]

    def _set_lr(self, lr):
        self.trainer.config = replace(self.trainer.config, lr=lr)
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr

    def apply(self, settings, device=None):
        """Switch to new settings: returns ``"same"``, ``"updated"`` or ``"rebuilt"``.

        Learning rate and batch size change the running trainer in place (as in Playground);
        a new dataset, model, size, seed or device starts a fresh model.
        """
        device = self.device if device is None else pick_device(device)
        if settings == self.settings and device == self.device:
            return "same"
        if settings.architecture != self.settings.architecture or device != self.device:
            self._build(settings, device)  # if it raises, the run is as it was
            return "rebuilt"
        lr_changed = settings.lr != self.settings.lr
        self.settings = settings
        self.trainer.config = replace(self.trainer.config, batch_size=settings.batch_size)
        if lr_changed or not self.source.startswith("shipped"):
            self._set_lr(settings.lr)  # the user's rate now, also for a shipped model
        return "updated"

    # -- training --------------------------------------------------------------------------------
    @property
    def iteration(self):
        return self.trainer.step

    @property
    def last_loss(self):
        """The mean loss of the last 20 steps (nats), or ``None`` before the first step."""
        return recent_loss(self.trainer.history["loss"])

    @property
    def steps_per_second(self):
        """Steps per second of training time over the ticks of this session (``None`` before any)."""
        return self._tick_steps / self._tick_seconds if self._tick_seconds > 0 else None

    def play(self):
        """Let the run train again after it paused itself; clears :attr:`message`."""
        self.message, self.paused = None, False
        return self

    def tick(self, seconds=0.3, max_steps=None):
        """Train for about ``seconds`` (at least one step); returns the steps kept.

        While :attr:`paused` this trains nothing and returns 0. If training breaks down (the loss
        or a weight becomes NaN or infinite, or nflows' or torch's maths raise), the run goes back
        to its last good state, pauses, and sets :attr:`message`; nothing is raised.
        """
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        if self.paused:
            return 0
        return self._train(lambda: self.trainer.train_for(seconds, max_steps=max_steps))

    def step(self, n=1):
        """``n`` training steps (the Step button; it also ends a pause); returns the steps kept:
        ``n``, or fewer when training broke down and the run went back to a good state."""
        n = check_positive_int(n, "n")
        self.play()
        return self._train(lambda: [self.trainer.train_step() for _ in range(n)])

    def _train(self, steps):
        """Run ``steps()``, then keep the new state as good, or go back to the last good one."""
        before, start = self.iteration, time.perf_counter()
        try:
            steps()
            failure = None if model_is_finite(self.model) else "a weight became NaN or infinite"
        except BREAKDOWN_ERRORS as error:
            failure = describe(error)
        self._tick_seconds += time.perf_counter() - start
        self._tick_steps += self.iteration - before
        if failure is None:
            self._good.save()
        else:
            self._recover(failure, before=self.iteration + 1)
        return max(self.iteration - before, 0)

    def _recover(self, failure, before, drawing=False, failed_at=None):
        """Go back to the newest good state from before step ``before``, pause, and say why
        (``failed_at``: the step where it first broke down, by default the current one)."""
        failed_at = self.iteration if failed_at is None else failed_at
        what = self._step_back(before)
        doing = "drawing the model failed" if drawing else "training failed"
        self.message = (f"Training diverged at learning rate {self.settings.lr:g} after {failed_at:,} steps "
                        f"({doing}: {failure}); {what}. Lower the learning rate and press Play.")
        self.paused = True

    def _step_back(self, before):
        """Restore the newest good state from before step ``before`` (a fresh model when none is left);
        returns what was done, for a message."""
        restored = self._good.restore(before)
        if restored is None:  # even the starting state fails: only a fresh model is left
            self._build()
            return "started a fresh model"
        self._new_weights()
        return f"restored the model from step {restored:,}"

    def fail(self, doing, error, restore=True):
        """Pause after an ``error`` the run did not expect while ``doing`` (for example ``"training"`` or
        ``"drawing the density"``): a bug, or memory running out, rather than a breakdown of the maths.

        With ``restore`` the run first goes back to its last good state (the one kept after the last
        good tick), since a step may have stopped half-way. Sets :attr:`message` (what failed, what was
        done, how to go on) and returns it; nothing is raised, so a page can show it and go on.
        """
        if not isinstance(doing, str) or not doing:
            raise ValueError(f"doing must name what failed, got {doing!r}")
        if not isinstance(error, BaseException):
            raise ValueError(f"error must be an exception, got {type(error).__name__}")
        at = self.iteration
        what = self._step_back(before=at + 1) if restore else "the model is unchanged"
        self.message = (f"{doing[0].upper()}{doing[1:]} failed at step {at:,} with an error the kit did not expect "
                        f"({describe(error)}); {what} and paused. Press Play to try again, or Reset for a "
                        "fresh model.")
        self.paused = True
        return self.message

    def reference_nll(self):
        """The best possible loss, -E log p_true(x), where the true density is known (four circles)."""
        if self.settings.dataset != "four-circles":
            return None
        return _four_circles_reference()

    # -- pictures (numpy, cached per training step) ----------------------------------------------
    def data(self, n=1000):
        """``n`` fixed points of the dataset (the same every call), as a float32 tensor on CPU."""
        return toy(self.settings.dataset, n, seed=VIEW_SEED)

    def _cached(self, name, key, make, refresh_every=0.0):
        """``make()``, reused while training has not moved on (or is younger than ``refresh_every``).

        ``refresh_every="auto"`` reuses a value for three times as long as it took to make, so
        that drawing takes at most about a quarter of a slow machine's time.
        """
        entry = self._cache.get(name)
        if entry is not None and entry["key"] == key:
            if entry["step"] == self.iteration:
                return entry["value"]
            wait = 3 * entry["cost"] if refresh_every == "auto" else refresh_every
            if time.monotonic() - entry["made_at"] < wait:
                return entry["value"]
        start = time.monotonic()
        value = self._drawn(make)
        now = time.monotonic()
        self._cache[name] = {"key": key, "step": self.iteration, "made_at": now, "cost": now - start, "value": value}
        return value

    def _drawn(self, make):
        """``make()``; if the model's maths break down in it, go back to an earlier good state
        (see :meth:`_recover`) and make it from there."""
        failed_at = self.iteration  # an older state may fail too: the message names the first
        while True:
            try:
                return make()
            except BREAKDOWN_ERRORS as error:
                if self.iteration == 0 and self.source == "fresh":
                    raise  # an untrained model that cannot be drawn is a bug, not a divergence
                self._recover(describe(error), before=self.iteration, drawing=True, failed_at=failed_at)

    def _to_model(self, x):
        return x.to(device=self.model.device, dtype=self.model.dtype)

    def pictures(self, resolution=100, n_samples=1000, n_data=500, refresh_every=0.0):
        """Density on a grid, samples and data; recomputed when training moved on.

        With ``refresh_every`` > 0 (seconds, or ``"auto"``) a picture younger than that is reused
        even if training moved on, so that slow machines spend their time training, not drawing.
        The opening picture of a shipped model is kept for the whole process, so every new
        session (a new browser page) shows it without drawing it again.
        """
        pictures = self._cached(
            "pictures", (resolution, n_samples, n_data),
            lambda: self._make_pictures(resolution, n_samples, n_data), refresh_every,
        )
        if is_opening(self, pictures):
            path = self.settings.pretrained_path()
            _OPENING_PICTURES[_opening_key(path, self.device, self.settings.seed)] = _Opening(pictures.step, self._cache["pictures"])
        return pictures

    def _make_pictures(self, resolution, n_samples, n_data):
        return _draw_pictures(self.model, self.settings, self.iteration, resolution, n_samples, n_data)

    def latents(self, n=2000):
        """The data encoded by the model, and the KS distance of each latent to N(0, 1)."""
        return self._cached("latents", n, lambda: self._make_latents(n))

    @torch.no_grad()
    def _make_latents(self, n):
        z = self.model.eval().encode(self._to_model(self.data(n))).cpu().double()
        _check_finite(z, "encoding the data gave NaN or infinite latents")
        return LatentView(self.iteration, z.numpy(), [ks_statistic(z[:, i]) for i in range(z.shape[1])])

    def stages(self, n=600):
        """The data and its image after each layer (Playground's per-neuron thumbnails)."""
        return self._cached("stages", n, lambda: layer_stages(self.model, self.data(n)))

    def funnel(self, n=800, resolution=80) -> FunnelInside | None:
        """The first funnel layer seen from inside (:func:`funnelkit.models.inspection.funnel_inside`), or
        ``None`` if the model has no 2-D -> 1-D funnel."""
        return self._cached("funnel", (n, resolution), lambda: funnel_inside(self.model, self.data(n), resolution))

    def layer_terms(self, x):
        """Eq. 6 in numbers, averaged over points ``x``: ``(rows, summed, log_prob)`` of
        :func:`funnelkit.models.inspection.eq6_table` (``summed``, the rows' total, equals ``log_prob``)."""
        return self._drawn(lambda: eq6_table(self.model, torch.as_tensor(x, dtype=torch.float32).reshape(-1, 2)))


@torch.no_grad()
def _draw_pictures(model, settings, step, resolution, n_samples, n_data):
    """The Train tab's pictures of ``model`` (trained ``step`` steps on ``settings.dataset``)."""
    model = model.eval()

    def to_model(x):
        return x.to(device=model.device, dtype=model.dtype)

    axis, log_p = grid_log_prob(lambda p: model.log_prob(to_model(p)).cpu(), BOUNDS, resolution)
    with seeded(settings.seed, model.device):  # the same noise every time: samples move smoothly
        samples = model.sample(n_samples).cpu()
    # A spline driven to extremes can give NaN without raising: a breakdown like the others.
    _check_finite(samples, "sampling gave NaN or infinite points")
    _check_finite(log_p, "the density on the grid is NaN", nan_only=True)
    return Pictures(
        step=step, axis=axis.numpy(), log_density=log_p.double().numpy(), samples=samples.numpy(),
        data=toy(settings.dataset, n_data, seed=VIEW_SEED).numpy(),
    )


def continue_lr(settings):
    """The rate a shipped model goes on at: :data:`SHIPPED_CONTINUE_LR` while ``settings`` hold the
    default learning rate, else the settings' own (a link or the sidebar chose it)."""
    default = LiveSettings.__dataclass_fields__["lr"].default
    return SHIPPED_CONTINUE_LR if settings.lr == default else settings.lr


def opening_view(settings, device="cpu", resolution=100, n_samples=1000, n_data=500):
    """The :class:`Opening` of ``settings``' shipped checkpoint, or ``None`` when there is none. Its
    picture is the one :meth:`LiveRun.pictures` gives a freshly loaded run, and is kept for the process."""
    path = settings.pretrained_path()
    if path is None:
        return None
    device = pick_device(device)
    payload = _read_shipped_at(path, path.stat().st_mtime_ns)
    trainer = payload.get("trainer") or {}
    history = trainer.get("history") or {"step": [], "loss": []}
    step = trainer.get("step", 0)
    key = _opening_key(path, device, settings.seed)
    torch.manual_seed(settings.seed)
    model = plane_model(settings.model, preset=PRESET, **settings.plane_overrides()).to(device)
    model.load_state_dict(payload["state_dict"])
    cached = _OPENING_PICTURES.get(key)
    if cached is None or cached.step != step or cached.cached["key"] != (resolution, n_samples, n_data):
        start = time.monotonic()
        pictures = _draw_pictures(model, settings, step, resolution, n_samples, n_data)
        now = time.monotonic()
        cached = _Opening(step, {"key": (resolution, n_samples, n_data), "step": step, "made_at": now,
                                 "cost": now - start, "value": pictures})
        _OPENING_PICTURES[key] = cached
    reference = _four_circles_reference() if settings.dataset == "four-circles" else None
    return Opening(step, list(history["loss"]), list(history["step"]), f"shipped checkpoint {shown(path)}",
                   model.num_parameters(), cached.cached["value"], reference, key, continue_lr(settings))


def is_opening(run, pictures):
    """Whether ``pictures`` show ``run``'s shipped model as shipped (before any step of training here)."""
    path = run.settings.pretrained_path()
    return path is not None and run.source.startswith("shipped") and pictures.step == _shipped_step(path)


def _check_finite(values, what, nan_only=False):
    """Raise ``ArithmeticError(what)`` when ``values`` hold NaN (or, unless ``nan_only``, infinity)."""
    bad = torch.isnan(values) if nan_only else ~torch.isfinite(values)
    if bad.any():
        raise ArithmeticError(f"{what} ({int(bad.sum()):,} of {values.numel():,} values)")


@dataclass(frozen=True)
class _Opening:
    """A shipped model's first picture, as a cache entry of :meth:`LiveRun._cached`."""

    step: int
    cached: dict

    def entry(self):
        return dict(self.cached)


_OPENING_PICTURES = {}  # (checkpoint path, its mtime, device, seed) -> _Opening


def _opening_key(path, device, seed):
    return str(path), path.stat().st_mtime_ns, str(device), seed


@functools.lru_cache(maxsize=8)
def _read_shipped_at(path, mtime_ns):
    return read_checkpoint(path)


def _read_shipped(path):
    """A shipped checkpoint, read from disk once per process (and again when the file changes); each
    caller gets its own copy (Adam's moments and the history are updated in place by training)."""
    return copy.deepcopy(_read_shipped_at(path, path.stat().st_mtime_ns))


def _shipped_step(path):
    trainer = _read_shipped_at(path, path.stat().st_mtime_ns).get("trainer") or {}
    return trainer.get("step", 0)


@functools.cache
def _four_circles_reference(n=20_000):
    x = toy("four-circles", n, seed=VIEW_SEED, dtype=torch.float64)
    return -four_circles_log_prob(x).mean().item()



