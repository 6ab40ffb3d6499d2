"""The tabular runs of Table 1 and of ``funnelkit train tabular`` (paper Sec. 4 "Tabular Data",
A.6, Table 5): the presets, the MAF data or their labelled stand-ins, the best-validation
training settings, and :data:`TABULAR`, the experiment's object for
:mod:`funnelkit.experiments.commands`. :mod:`.table1` imports them from here (the presets are
described in its docstring).
"""

import math
import zlib
from dataclasses import dataclass, field, replace

import torch

from ..data.cache import DatasetNotFoundError
from ..data.tabular import TABULAR_DATASETS, tabular
from ..device import seed_everything
from ..models.tabular import TABULAR_MODELS, tabular_config, tabular_model
from . import paper_numbers as paper
from .results import data_record
from .runs import nats, row_batches, train_config
from .trainable import Experiment, ExperimentData

STANDIN_COMPONENTS = 10
CLASSROOM_STEPS = 20_000  # see the classroom preset's docstring entry
CLASSROOM_GLOW_STEPS = {"glow": 60_000, "f-glow": 60_000}  # their steps cost a third of an NSF's
VALIDATION_EVERY = 500  # steps between validation losses (the authors' uci.py monitor_interval)


@dataclass(frozen=True)
class Table1Settings:
    """What one Table 1 run does; ``steps`` None means each model's own (Table 5 or quick)."""

    datasets: tuple = paper.TABLE1_DATASETS
    models: tuple = paper.TABLE1_MODELS
    model_preset: str = "paper"
    allow_standin: bool = False  # quick: a stand-in when the MAF files are missing
    standin_sizes: tuple = (20_000, 2_000, 5_000)  # train, validation, test rows of a stand-in
    steps: int = None
    model_steps: dict = field(default_factory=dict)  # steps of named models, over ``steps``
    model_overrides: dict = field(default_factory=dict)


PRESETS = {
    "paper": Table1Settings(),
    "quick": Table1Settings(datasets=("power", "gas"), model_preset="quick", allow_standin=True, steps=1000),
    "classroom": Table1Settings(datasets=("power", "gas"), model_preset="quick", allow_standin=True,
                                steps=CLASSROOM_STEPS, model_steps=CLASSROOM_GLOW_STEPS),
}


# --------------------------------------------------------------------------------------------
# The stand-in data
# --------------------------------------------------------------------------------------------

class StandIn:
    """A seeded mixture of full-covariance Gaussians in ``dim`` dimensions (default: the
    dataset's), standardised with the training rows' mean and standard deviation.

    ``splits`` holds float32 train/val/test tensors; :meth:`log_prob` is the exact log density
    of the standardised data (float64).
    """

    def __init__(self, dataset, sizes, components=STANDIN_COMPONENTS, dim=None):
        self.dataset = dataset
        self.dim = dim or TABULAR_DATASETS[dataset].dim
        self.seed = zlib.crc32(f"funnelkit table1 stand-in {dataset}".encode())
        generator = torch.Generator().manual_seed(self.seed)
        d, k = self.dim, components
        self.weights = torch.softmax(torch.randn(k, generator=generator, dtype=torch.float64), 0)
        self.means = 2.5 * torch.randn(k, d, generator=generator, dtype=torch.float64)
        rotations = torch.linalg.qr(torch.randn(k, d, d, generator=generator, dtype=torch.float64))[0]
        # standard deviations 1 down to 0.03 along random axes: thin ellipsoids near lower-dimensional planes
        spectrum = torch.logspace(0, math.log10(0.03), d, dtype=torch.float64)
        scales = spectrum * torch.exp(0.3 * torch.randn(k, d, generator=generator, dtype=torch.float64))
        self.scale_tril = torch.linalg.cholesky(rotations @ torch.diag_embed(scales**2) @ rotations.transpose(1, 2))
        raw = self._sample(sum(sizes), generator)
        n_train = sizes[0]
        self.shift, self.scale = raw[:n_train].mean(0), raw[:n_train].std(0)
        standardised = (raw - self.shift) / self.scale
        bounds = [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
        self.splits = {split: standardised[a:b].to(torch.float32)
                       for split, a, b in zip(("train", "val", "test"), bounds[:-1], bounds[1:])}

    def _sample(self, n, generator):
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, 1, generator=generator, dtype=torch.float64)
        return self.means[component] + (self.scale_tril[component] @ noise).squeeze(-1)

    def log_prob(self, y):
        """Exact log density of standardised points ``y`` (n, dim), float64."""
        x = y.to(torch.float64) * self.scale + self.shift
        mixture = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(self.weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril),
        )
        return mixture.log_prob(x) + torch.log(self.scale).sum()

    def describe(self, missing):
        n_train, n_val, n_test = (len(self.splits[s]) for s in ("train", "val", "test"))
        return (f"a fixed, seeded mixture of {len(self.weights)} full-covariance Gaussians in {self.dim} "
                f"dimensions ({TABULAR_DATASETS[self.dataset].name}'s dimension; seed {self.seed}), standardised; "
                f"{n_train:,} train / {n_val:,} validation / {n_test:,} test rows. The MAF file {missing} was "
                "not found")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def load_data(settings, root=None):
    """``{dataset: (splits, data record, stand-in or None)}`` for every dataset of ``settings``.

    All sets are loaded (or found missing) before anything is trained: a missing file raises
    :class:`DatasetNotFoundError` unless the settings allow a stand-in.
    """
    out = {}
    for dataset in settings.datasets:
        info = TABULAR_DATASETS[dataset]
        try:
            splits = {split: torch.from_numpy(tabular(dataset, split, root=root)) for split in ("train", "val", "test")}
            source = (f"MAF-preprocessed {info.name} (Zenodo record 1161203), {len(splits['train']):,} train / "
                      f"{len(splits['val']):,} validation / {len(splits['test']):,} test rows")
            out[dataset] = (splits, data_record(info.name, source, False), None)
        except DatasetNotFoundError as error:
            if not settings.allow_standin:
                raise
            standin = StandIn(dataset, settings.standin_sizes)
            name = f"{info.name} stand-in (synthetic, {info.dim}-D)"
            out[dataset] = (standin.splits, data_record(name, standin.describe(error.file), True), standin)
    return out


# --------------------------------------------------------------------------------------------
# Training settings
# --------------------------------------------------------------------------------------------

def best_validation_config(steps, batch_size, lr, grad_clip_norm):
    """The training settings of a Table 1 run: the runs' defaults (:func:`train_config`), the
    validation loss every ``VALIDATION_EVERY`` steps (every twentieth of a shorter run), and the
    best-validation weights kept and tested (``keep_best``)."""
    return keeping_best_validation(train_config(steps, batch_size, lr, grad_clip_norm=grad_clip_norm))


def keeping_best_validation(config):
    """``config`` validating every ``VALIDATION_EVERY`` steps (a twentieth of a shorter run) and
    keeping the best-validation weights, as every tabular run (Table 1, ``funnelkit train tabular``) does."""
    return replace(config, eval_every=max(1, min(VALIDATION_EVERY, config.steps // 20)), keep_best=True)


# --------------------------------------------------------------------------------------------
# The experiment of ``funnelkit train tabular``
# --------------------------------------------------------------------------------------------

class Tabular(Experiment):
    """``funnelkit train tabular``: a MAF set (never a stand-in: a missing file is an error), the
    model's Table 5 batch size, steps and learning rate (the VAE its own column's rate), gradient
    norm clipped at 5, the best-validation weights tested; the test split in nats."""

    name = "tabular"
    models = TABULAR_MODELS
    datasets = tuple(TABULAR_DATASETS)
    default_dataset = "power"
    options = ("dataset", "root")
    default_samples = 5000

    def data_label(self, spec):
        return spec.dataset

    def training_settings(self, spec):
        config = tabular_config(spec.dataset, spec.preset)
        return {"steps": config.steps, "batch_size": config.batch_size,
                "lr": config.vae_lr if spec.model == "vae" else config.lr,
                "grad_clip_norm": config.grad_clip_norm}

    def train_config(self, settings, spec, amp):
        return keeping_best_validation(super().train_config(settings, spec, amp))  # validated on the whole split

    def build_model(self, spec):
        seed_everything(spec.seed)
        return tabular_model(spec.model, spec.dataset, preset=spec.preset)

    def read_data(self, spec, test_max):
        settings = replace(PRESETS["paper"], datasets=(spec.dataset,), allow_standin=False)
        splits, record, _ = load_data(settings, spec.root)[spec.dataset]
        return ExperimentData(row_batches(splits["train"]), splits["val"], splits["test"][:test_max], [record])

    def evaluate(self, spec, model, data, progress=False):
        return nats(model, data.test, progress=progress), None


TABULAR = Tabular()

__all__ = ["CLASSROOM_GLOW_STEPS", "CLASSROOM_STEPS", "PRESETS", "STANDIN_COMPONENTS", "TABULAR", "VALIDATION_EVERY",
           "StandIn", "Table1Settings", "Tabular", "best_validation_config", "keeping_best_validation", "load_data"]
