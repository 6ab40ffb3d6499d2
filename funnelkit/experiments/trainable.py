"""What every experiment that ``funnelkit train|eval|sample`` trains shares: :class:`Spec` (the
choices of one run), :class:`ExperimentData` (its data) and :class:`Experiment`, the base of the one
object per experiment (four circles, tabular, images, anomaly; each in the experiment's shared
module) through which :mod:`funnelkit.experiments.commands` trains, evaluates and samples, without
asking which experiment it holds.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, load, read_checkpoint
from ..data.images import OfflineDataWarning
from ..device import pick_device
from .runs import METRICS_NAME, train_config, train_or_load


@dataclass(frozen=True)
class Spec:
    """The choices that make one run: experiment, model, preset, the experiment's data options,
    steps and seed (the run itself is its folder on disk)."""

    experiment: str
    model: str = "f-nsf"
    preset: str = "quick"
    dataset: str = None
    bits: int = None
    latent_size: int = None
    root: str = None
    download: bool = False
    steps: int = None
    seed: int = 0


@dataclass
class ExperimentData:
    """The data a run trains and is tested on, in memory: the training stream, validation and test
    data, and what they are (stand-ins labelled)."""

    sample_batch: object
    validation: torch.Tensor
    test: torch.Tensor
    records: list
    test_out: torch.Tensor = None  # anomaly: Fashion-MNIST

    @property
    def stand_in(self):
        return any(r["stand_in"] for r in self.records)


def command(spec, out=None):
    """The ``funnelkit train`` command line that makes this run (stored in ``metrics.json``; an
    extended run keeps the command that made it first and records each extension's)."""
    words = ["funnelkit", "train", spec.experiment, "--model", spec.model, "--preset", spec.preset]
    if spec.dataset:
        words += ["--dataset", spec.dataset]
    if spec.bits:
        words += ["--bits", str(spec.bits)]
    if spec.latent_size and spec.model != "nsf":
        words += ["--latent-size", str(spec.latent_size)]
    if spec.steps:
        words += ["--steps", str(spec.steps)]
    if spec.seed:
        words += ["--seed", str(spec.seed)]
    if out is not None:
        words += ["--out", str(out)]
    return shlex.join(words)


def load_run(run, device="cpu"):
    """The model of a checkpoint file or run folder (checked: CheckpointError if unreadable)."""
    read_checkpoint(run)  # a missing or corrupt file fails with its own message
    return load(run, device=device)


class Experiment(ABC):
    """One trainable experiment: what it takes, how a run of it is trained, scored and sampled.

    A subclass sets the class attributes and implements the abstract methods (:meth:`data_label`,
    :meth:`training_settings`, :meth:`build_model`, :meth:`read_data`, :meth:`evaluate`); the rest is what
    the tabular, image and anomaly experiments share (four circles override training and scoring).
    """

    name: str
    models: tuple  # the model names --model takes
    datasets: tuple = ()  # the data sets --dataset takes (none: the option is not taken)
    default_dataset: str = None
    presets: tuple = ("quick", "paper", "classroom")
    options: tuple = ()  # the data options it takes: dataset, bits, latent_size, root, download
    classroom: bool = False  # the classroom preset is defined for it
    classroom_datasets: tuple = None  # ... for these data sets only (None: for all)
    default_samples: int = 64  # how many samples ``funnelkit sample`` draws when --n is not given
    samples_on_cpu: bool = False  # sampled on the cpu whatever --device says

    @property
    def model_kind(self) -> str:
        """What an error message calls one of its models ("tabular model")."""
        return f"{self.name} model"

    def data_options(self, model, bits, latent_size):
        """``(bits, latent_size)`` checked, their defaults filled in (default: neither is taken)."""
        return bits, latent_size

    def folder_part(self, spec) -> str:
        """What names the data in the default run folder (``power``, ``mnist-5bit``; "": nothing)."""
        return spec.dataset or ""

    @abstractmethod
    def data_label(self, spec) -> str:
        """The data of a run in a few words ("power", "MNIST, 5-bit")."""

    @abstractmethod
    def training_settings(self, spec) -> dict:
        """``{"steps", "batch_size", "lr"[, "grad_clip_norm"]}`` of the preset (``--steps`` not applied)."""

    @abstractmethod
    def build_model(self, spec):
        """The model of a run, freshly initialised (seeded with the run's seed)."""

    def bits(self, spec) -> int:
        """The bit depth of the run's images (8 for 8-bit data)."""
        return 8

    def load_data(self, spec, test_max=None) -> ExperimentData:
        """The run's data; a missing file raises before anything is written. ``test_max`` keeps the
        first that many test examples (of each set)."""
        with warnings.catch_warnings():  # offline data is named in the records, printed and stored
            warnings.simplefilter("ignore", OfflineDataWarning)
            return self.read_data(spec, test_max)

    @abstractmethod
    def read_data(self, spec, test_max) -> ExperimentData:
        """:meth:`load_data` of the experiment, the offline-data warnings silenced around it."""

    @abstractmethod
    def evaluate(self, spec, model, data, progress=False):
        """``(numbers, arrays)``: the test numbers and the per-example values (or None)."""

    def train_config(self, settings, spec, amp):
        """The Trainer's config of a run from its :meth:`training_settings` (``--steps`` applied)."""
        extra = {"grad_clip_norm": settings["grad_clip_norm"]} if "grad_clip_norm" in settings else {}
        return train_config(settings["steps"], settings["batch_size"], settings["lr"], seed=spec.seed, amp=bool(amp),
                            **extra)

    def evaluation_key(self, spec, data) -> dict:
        """What the stored test numbers were computed on (a run whose key differs is scored again)."""
        key = {"experiment": spec.experiment, "test": data.records[-1]["name"], "n": len(data.test)}
        if data.test_out is not None:
            key["n_out"] = len(data.test_out)
        return key

    def spec_of(self, model, run, root=None, description=None) -> Spec:
        """The :class:`Spec` of a trained model (its config), with ``root`` (else the one stored in
        the run folder's ``metrics.json``, else the kit's cache) and the run's seed."""
        config = model.config
        description = description if description is not None else folders.describe_run(run)
        root = root if root is not None else description.root
        return Spec(self.name, config["name"], config["preset"], config.get("dataset"), root=root,
                    seed=description.seed, **self.options_of(config))

    def options_of(self, config) -> dict:
        """The data options of :class:`Spec` that a model's config records (``bits``, ``latent_size``)."""
        return {}

    def run_settings(self, spec, settings) -> dict:
        """The settings of a run as ``metrics.json`` records them: the run's choices and ``settings``."""
        return {"model": spec.model, "preset": spec.preset, "dataset": spec.dataset, "bits": spec.bits,
                "latent_size": spec.latent_size, "seed": spec.seed, **settings,
                "root": None if spec.root is None else str(Path(spec.root).expanduser().resolve())}

    def train(self, spec, out, settings, command_line, device="auto", progress=True, amp=False, extend=False):
        """Train (or resume, load or extend) the run of ``spec`` in the folder ``out`` with the
        training ``settings``; returns ``(Run, ExperimentData)``. ``command_line`` (the one that makes the
        run), the data records and the settings are stored in ``metrics.json``."""
        device = pick_device(device)  # an unknown or absent device fails before the data are read
        config = self.train_config(settings, spec, amp)
        model = self.build_model(spec)  # seeded: built once, checked against the folder, then trained
        if (out / CHECKPOINT_NAME).is_file():  # a folder holding another run is refused before the data are read
            folders.plan_run(out, model.config, config, extend)
        with torch.random.fork_rng(devices=[]):  # reading the data leaves the model's random stream as it was
            data = self.load_data(spec)  # raises before anything is written when a file is missing
        model = model.to(device)
        describe = {"experiment": spec.experiment, "command": command_line, "data": data.records,
                    "stand_in": data.stand_in, "settings": self.run_settings(spec, settings)}
        run = train_or_load(model, data.sample_batch, config, out,
                            evaluate=lambda m: self.evaluate(spec, m, data, progress),
                            evaluation_key=self.evaluation_key(spec, data), validation=data.validation,
                            progress=progress, name=f"{spec.experiment} {spec.model}", describe=describe,
                            extend=extend)
        return run, data

    def evaluate_run(self, run, description, root=None, test_max=None, from_metrics=False, device="cpu",
                     progress=False):
        """``(model, spec, numbers, records, how)``: the run's test numbers, recomputed on the test
        data (or, with ``from_metrics``, read from its ``metrics.json``)."""
        model = load_run(run, device)
        spec = self.spec_of(model, run, root, description)
        if from_metrics:
            folder = folders.folder_of(run)
            if not description.evaluation:
                raise ValueError(f"no evaluation in {folder / METRICS_NAME}: expected the metrics.json that "
                                 "`funnelkit train` writes; run `funnelkit eval` without --from-metrics to compute it")
            how = "read from metrics.json" if (folder / METRICS_NAME).is_file() else "read from the checkpoint"
            return model, spec, description.evaluation, list(description.data), how
        data = self.load_data(spec, test_max)
        numbers, _ = self.evaluate(spec, model, data, progress)
        return model, spec, numbers, data.records, "recomputed on the test data"

    def draw_samples(self, model, spec, n, temperature, seed, temper):
        """``n`` samples of the run's model at ``temperature``, seeded by ``seed``: rows (n, D) on
        the cpu here; uint8 images (n, C, H, W) for the image experiments."""
        torch.manual_seed(seed)
        with torch.no_grad():
            return model.sample(n, temperature=temperature, temper=temper).cpu()


__all__ = ["Experiment", "ExperimentData", "Spec", "command", "load_run"]
