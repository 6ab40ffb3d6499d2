"""What ``funnelkit train|eval|sample|reproduce`` do for every experiment (four circles' test
numbers are :mod:`funnelkit.experiments.four_circles`'); :mod:`funnelkit.cli.main` only parses and prints.

One run of one model, in a run folder, by :func:`funnelkit.experiments.runs.train_or_load`
(resumable; a finished run is loaded, not trained again; ``--extend`` continues a finished one;
a folder made with other settings is refused before anything is written). Run folders are read
through :mod:`funnelkit.runs`. The data, the split and the training settings are those of the
reproduce entries, whose loaders are reused here:

* ``four-circles`` (Fig. 2, A.5): fresh draws of four circles, the presets of
  :data:`funnelkit.experiments.four_circles.TRAIN_PRESETS`; the test log-likelihood beside the
  true density's.

* ``tabular`` (Table 1, A.6): a MAF set (:func:`funnelkit.experiments.table1.load_data`, never a
  stand-in: a missing file is an error), the model's Table 5 batch size, steps and learning rate
  (:func:`funnelkit.models.tabular.tabular_config`; the VAE its own column's rate), gradient norm
  clipped at 5; the test split in nats.
* ``images`` (Table 2, A.8, Table 7): ``paper``: the full train split (1% cut off for
  validation) and the test split (:func:`funnelkit.experiments.image_runs.load_columns`), Table 7's
  batch, rate and steps for CIFAR-10 and ImageNet64; for MNIST and Fashion-MNIST, which Table 7
  does not cover and for which the paper gives no steps, batch or rate, the authors'
  ``AD_config.json`` (batch 512, 5e-4, 200,000 steps). ``quick``: Table 2's quick settings (400
  steps of batch 64 at 1e-3, 4,000 for the VAE) on the train split with 1,000 images held out
  (Table 2's seed) as the test; for MNIST that split is always the kit's offline first 10,000
  training images (a stand-in, labelled as one; the same on every machine, also where the full
  MNIST is there). Bits/dim on the test images. ``classroom`` (MNIST and Fashion-MNIST only):
  Table 2's classroom settings (the classroom models of :mod:`funnelkit.models.anomaly`, sized for a
  2-core laptop CPU; the steps of the shipped classroom runs: F-NSF 9,000, NSF 6,000, VAE 20,000) on
  the same data and split as quick.
* ``anomaly`` (Table 4, A.9): MNIST at 8 bits and the Fashion-MNIST test set,
  :func:`funnelkit.experiments.anomaly_runs.load_data` and Table 4's settings for the preset; bits/dim
  on both sets, their ratio and the AUROC (``classroom``: Table 4's classroom settings).

``eval`` rebuilds the same test data from the model's own config (any checkpoint or run folder
works, also one made by ``funnelkit reproduce``) and recomputes the numbers; they equal the
ones ``train`` stored in ``metrics.json`` (fixed dequantisation noise, seeded ELBO). Four
circles draw fresh test points and are scored beside the true density.

``reproduce`` calls every paper result (:data:`funnelkit.experiments.RESULTS`) through one
signature, :func:`reproduce`; the options each result takes are declared in
:data:`funnelkit.experiments.OPTIONS`.
"""

from __future__ import annotations

import math
import shlex
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, load, read_checkpoint
from ..data.images import DATASET_NAMES, OfflineDataWarning, image_dataset
from ..validation import check_choice, check_positive_int
from . import anomaly_runs, image_runs
from .results import data_line, data_record, save_figure, save_image_grid
from .runs import (EVALUATION_NAME, METRICS_NAME, bpd_summary, dequantised, held_out_split, image_batches, nats,
                   per_example_bpd, row_batches, train_config, train_or_load)

EXPERIMENTS = ("four-circles", "tabular", "images", "anomaly")
PRESETS = ("quick", "paper", "classroom")
#: The experiments and image data sets the classroom preset is defined for.
CLASSROOM = {"images": ("mnist", "fashion-mnist"), "anomaly": None}
FOUR_CIRCLES_PRESETS = ("quick", "paper", "authors-code")
#: The options each experiment takes (four-circles: none of these).
OPTIONS = {
    "four-circles": (),
    "tabular": ("dataset", "root"),
    "images": ("dataset", "bits", "root", "download"),
    "anomaly": ("latent_size", "root", "download"),
}
DEFAULT_DATASET = {"tabular": "power", "images": "mnist"}
DEFAULT_BITS = 5  # Table 2's first column and its quick preset
DEFAULT_LATENT_SIZE = 16
LATENT_SIZES = (4, 16)  # Table 4
_EXPERIMENT_OF_BUILDER = folders.EXPERIMENT_OF_BUILDER
#: Builders whose config names no experiment's data (so eval cannot rebuild the test set), and
#: the experiment builder that makes the same model with its data named.
_DIRECT_BUILDERS = {
    "tabular_f_mlp": "funnelkit.models.tabular_model('f-mlp', DATASET) or `funnelkit train tabular --model f-mlp`",
    "anomaly_f_mlp": "funnelkit.models.anomaly_model('f-mlp', LATENT_SIZE) or `funnelkit train anomaly --model f-mlp`",
}


@dataclass(frozen=True)
class Spec:
    """One run: experiment, model, preset and the experiment's data options."""

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


def model_names(experiment: str) -> tuple:
    """The model names ``funnelkit train EXPERIMENT --model`` takes."""
    if experiment == "four-circles":
        from ..models.plane import MODEL_NAMES as names
    elif experiment == "tabular":
        from ..models.tabular import TABULAR_MODELS as names
    elif experiment == "images":
        from ..models.image import IMAGE_MODELS as names
    else:
        from ..models.anomaly import ANOMALY_MODELS as names
    return names


def datasets(experiment: str) -> tuple:
    """The data sets ``funnelkit train EXPERIMENT --dataset`` takes (tabular and images)."""
    if experiment == "tabular":
        from ..models.tabular import TABULAR_DATASETS as names
    else:
        from ..models.image import IMAGE_DATASETS as names
    return names


def make_spec(experiment, model="f-nsf", preset="quick", dataset=None, bits=None, latent_size=None, root=None,
              download=False, steps=None, seed=None):
    """A checked :class:`Spec` (the experiment's defaults filled in); bad input is a ValueError
    naming what was expected, raised before any data is read or anything written."""
    check_choice(experiment, EXPERIMENTS, "experiment")
    given = {"dataset": dataset, "bits": bits, "latent_size": latent_size, "root": root, "download": download or None}
    for option, value in given.items():
        if value is not None and option not in OPTIONS[experiment]:
            takes = ", ".join("--" + o.replace("_", "-") for o in OPTIONS[experiment])
            raise ValueError(f"{experiment} takes no --{option.replace('_', '-')}"
                             + (f"; its options: {takes}" if takes else " (its data are drawn fresh)"))
    check_choice(preset, FOUR_CIRCLES_PRESETS if experiment == "four-circles" else PRESETS, "preset")
    check_choice(model, model_names(experiment), "plane model" if experiment == "four-circles"
                 else f"{experiment} model")
    if experiment in DEFAULT_DATASET:
        dataset = dataset if dataset is not None else DEFAULT_DATASET[experiment]
        check_choice(dataset, datasets(experiment), f"{experiment} dataset")
    if experiment == "images":
        bits = DEFAULT_BITS if bits is None else bits
        check_choice(bits, (5, 8), "bits")
    if experiment == "anomaly":
        if model == "nsf" and latent_size is not None:
            raise ValueError("the anomaly nsf keeps all 784 values: it takes no --latent-size")
        latent_size = DEFAULT_LATENT_SIZE if latent_size is None else latent_size  # nsf: ignored by the builder
        check_choice(latent_size, LATENT_SIZES, "latent size")
    if preset == "classroom":
        _check_classroom(experiment, dataset)
    if steps is not None:
        check_positive_int(steps, "--steps")
    return Spec(experiment, model, preset, dataset, bits, latent_size, None if root is None else str(root),
                bool(download), steps, 0 if seed is None else seed)


def _check_classroom(experiment, dataset):
    if experiment not in CLASSROOM:
        raise ValueError(f"the classroom preset is defined for the experiments {', '.join(CLASSROOM)}, not for "
                         f"{experiment}; expected --preset quick or paper")
    if CLASSROOM[experiment] is not None and dataset not in CLASSROOM[experiment]:
        raise ValueError(f"the classroom preset of {experiment} is defined for --dataset "
                         f"{' or '.join(CLASSROOM[experiment])}, not for {dataset}; expected --preset quick or paper")


def default_out(spec):
    """``runs/EXPERIMENT-DATA-MODEL-PRESET`` (``-sN`` appended when ``--steps`` is given)."""
    what = {"four-circles": "", "tabular": spec.dataset, "images": f"{spec.dataset}-{spec.bits}bit",
            "anomaly": "" if spec.model == "nsf" else f"latent{spec.latent_size}"}[spec.experiment]
    parts = [spec.experiment, what, spec.model, spec.preset] + ([f"s{spec.steps}"] if spec.steps else [])
    return Path("runs") / "-".join(p for p in parts if p)


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


# --------------------------------------------------------------------------------------------
# Training settings and the model
# --------------------------------------------------------------------------------------------

def training_settings(spec):
    """``{"steps", "batch_size", "lr"[, "grad_clip_norm"]}`` of a run (``--steps`` wins)."""
    if spec.experiment == "four-circles":
        from .four_circles import train_config as four_circles_config

        config = four_circles_config(spec.preset)
        settings = {"steps": config.steps, "batch_size": config.batch_size, "lr": config.lr}
    elif spec.experiment == "tabular":
        from ..models.tabular import tabular_config

        config = tabular_config(spec.dataset, spec.preset)
        settings = {"steps": config.training_steps, "batch_size": config.batch_size,
                    "lr": config.vae_learning_rate if spec.model == "vae" else config.learning_rate,
                    "grad_clip_norm": config.grad_clip_norm}
    elif spec.experiment == "images" and spec.preset == "paper" and spec.dataset in ("cifar10", "imagenet64"):
        from ..models.image import TRAINING

        paper = TRAINING[spec.dataset, spec.bits]
        settings = {"steps": paper["num_steps"], "batch_size": paper["batch_size"], "lr": paper["learning_rate"]}
    else:  # images quick/classroom (Table 2's), MNIST-like images paper (A.9, as Table 4), anomaly (Table 4's)
        source = (image_runs.PRESETS[spec.preset] if spec.experiment == "images" and spec.preset != "paper"
                  else anomaly_runs.PRESETS[spec.preset if spec.experiment == "anomaly" else "paper"])
        steps = (image_runs.steps_of(source, spec.model) if isinstance(source, image_runs.ImageSettings)
                 else source.vae_steps if spec.model == "vae" and source.vae_steps else source.steps)
        settings = {"steps": steps, "batch_size": source.batch_size, "lr": source.lr}
    if spec.steps:
        settings["steps"] = spec.steps
    return settings


def build_model(spec):
    """The model of a run, freshly initialised (seeded with the run's seed)."""
    from ..device import seed_everything

    seed_everything(spec.seed)
    if spec.experiment == "tabular":
        from ..models.tabular import tabular_model

        return tabular_model(spec.model, spec.dataset, preset=spec.preset)
    if spec.experiment == "images":
        from ..models.image import image_model

        return image_model(spec.model, spec.dataset, spec.bits, preset=spec.preset)
    from ..models.anomaly import anomaly_model

    return anomaly_model(spec.model, spec.latent_size, preset=spec.preset)


def bits_of(spec):
    return spec.bits if spec.experiment == "images" else 8


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class RunData:
    """Training stream, validation and test data of a run, and what they are (stand-ins labelled)."""

    sample_batch: object
    validation: torch.Tensor
    test: torch.Tensor
    records: list
    test_out: torch.Tensor = None  # anomaly: Fashion-MNIST

    @property
    def stand_in(self):
        return any(r["stand_in"] for r in self.records)


def load_data(spec, test_max=None):
    """The :class:`RunData` of ``spec``; a missing file raises DatasetNotFoundError before anything
    is written. ``test_max`` keeps the first that many test examples (of each set)."""
    with warnings.catch_warnings():  # offline data is named in the records, printed and stored
        warnings.simplefilter("ignore", OfflineDataWarning)
        if spec.experiment == "tabular":
            return _tabular_data(spec, test_max)
        if spec.experiment == "images":
            return _image_data(spec, test_max)
        return _anomaly_data(spec, test_max)


def _tabular_data(spec, test_max):
    from . import table1

    settings = replace(table1.PRESETS["paper"], datasets=(spec.dataset,), allow_standin=False)
    splits, record, _ = table1.load_data(settings, spec.root)[spec.dataset]
    return RunData(row_batches(splits["train"]), splits["val"], splits["test"][:test_max],
                   [record])


def _image_data(spec, test_max):
    if spec.preset == "paper":
        settings = replace(image_runs.PRESETS["paper"], columns=((spec.dataset, spec.bits),), download=spec.download,
                           test_max=test_max)
        column = image_runs.load_columns(settings, spec.root)[0]
        return RunData(image_batches(column.images, spec.bits, column.train_index),
                       dequantised(column.validation, spec.bits, seed=1), column.test, column.records)
    quick = image_runs.PRESETS[spec.preset]  # quick or classroom: the same data and split
    data = image_dataset(spec.dataset, "train", root=spec.root, download=spec.download, prefer_offline=True)
    train_index, test_index = held_out_split(len(data), quick.held_out, image_runs.SPLIT_SEED)
    shown = DATASET_NAMES[spec.dataset]
    name = f"{shown} first {len(data):,} of train (offline subset)" if data.is_stand_in else f"{shown} train"
    source = (f"{data.source}; {len(train_index):,} images for training and {len(test_index):,} held out "
              f"(seed {image_runs.SPLIT_SEED}) as the test, reduced to {spec.bits} bits")
    record = data_record(name, source, data.is_stand_in, role="training and held-out test")
    validation = data.images[train_index[: quick.validation_max]]
    return RunData(image_batches(data.images, spec.bits, train_index), dequantised(validation, spec.bits, seed=1),
                   data.images[test_index][:test_max], [record])


def _anomaly_data(spec, test_max):
    settings = replace(anomaly_runs.PRESETS[spec.preset], download=spec.download, in_max=test_max, out_max=test_max)
    train, validation, test_in, test_out, records, _ = anomaly_runs.load_data(settings, spec.root)
    bits = anomaly_runs.BITS
    return RunData(image_batches(train, bits), dequantised(validation, bits, seed=1), test_in, records, test_out)


def evaluate(spec, model, data, progress=False):
    """``(numbers, arrays)`` on the test data: nats (tabular), bits/dim (images), bits/dim on
    both sets, ratio and AUROC (anomaly)."""
    if spec.experiment == "tabular":
        return nats(model, data.test, progress=progress), None
    if spec.experiment == "images":
        batch_size = image_runs.PRESETS[spec.preset].eval_batch_size
        values = per_example_bpd(model, data.test, spec.bits, batch_size=batch_size, progress=progress,
                                 desc="test bits/dim")
        return bpd_summary(values), {"bpd": values}
    return anomaly_runs.score(model, data.test, data.test_out, anomaly_runs.PRESETS[spec.preset], progress)


def _evaluation_key(spec, data):
    key = {"experiment": spec.experiment, "test": data.records[-1]["name"], "n": len(data.test)}
    if spec.experiment == "images":
        key["bits"] = spec.bits
    if data.test_out is not None:
        key["n_out"] = len(data.test_out)
    return key


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

def train(spec, out=None, device="auto", progress=True, amp=False, extend=False):
    """Train (or resume, load or, with ``extend``, extend) the run of ``spec`` in ``out``; returns
    ``(Run, RunData)``.

    Writes ``checkpoint.pt``, ``metrics.json`` (with the data used and the command that makes the
    run) and ``evaluation.pt`` (the per-example test values, where there are some) in ``out``
    (default :func:`default_out`). A folder holding a run with other settings is refused
    (:class:`funnelkit.runs.RunMismatch`) before anything is written. ``device`` may be a
    ``torch.device`` (under torchrun: each rank's).
    """
    from ..device import pick_device

    out = Path(out) if out is not None else default_out(spec)
    if spec.experiment == "four-circles":
        return _train_four_circles(spec, out, device, progress, amp, extend)
    settings = training_settings(spec)
    device = pick_device(device)  # an unknown or absent device fails before the data are read
    config = train_config(settings["steps"], settings["batch_size"], settings["lr"], seed=spec.seed, amp=bool(amp),
                          **({"grad_clip_norm": settings["grad_clip_norm"]} if "grad_clip_norm" in settings else {}))
    if spec.experiment == "tabular":  # validated on the whole validation split, the best weights tested
        from .table1 import keeping_best_validation

        config = keeping_best_validation(config)
    model = build_model(spec)  # seeded: built once, checked against the folder, then trained
    if (out / CHECKPOINT_NAME).is_file():  # a folder holding another run is refused before the data are read
        folders.plan_run(out, model.config, config, extend)
    with torch.random.fork_rng(devices=[]):  # reading the data leaves the model's random stream as it was
        data = load_data(spec)  # raises before anything is written when a file is missing
    model = model.to(device)
    describe = {
        "experiment": spec.experiment,
        "command": command(spec, out),
        "data": data.records,
        "stand_in": data.stand_in,
        "settings": {"model": spec.model, "preset": spec.preset, "dataset": spec.dataset, "bits": spec.bits,
                     "latent_size": spec.latent_size, "seed": spec.seed, **settings,
                     "root": None if spec.root is None else str(Path(spec.root).expanduser().resolve())},
    }
    run = train_or_load(model, data.sample_batch, config, out,
                        evaluate=lambda m: evaluate(spec, m, data, progress),
                        evaluation_key=_evaluation_key(spec, data), validation=data.validation, progress=progress,
                        name=f"{spec.experiment} {spec.model}", describe=describe, extend=extend)
    return run, data


def _train_four_circles(spec, out, device, progress, amp, extend):
    from . import four_circles

    data = four_circles_data()
    describe = {"command": command(spec, out), "data": data.records, "stand_in": False,
                "settings": {"model": spec.model, "preset": spec.preset, "seed": spec.seed,
                             **training_settings(spec)}}
    run = four_circles.train_run(spec.model, spec.preset, out, device=device, progress=progress, extend=extend,
                                 describe=describe, steps=spec.steps, seed=spec.seed, amp=bool(amp) or None)
    return run, data


def four_circles_data():
    """The :class:`RunData` of four circles: every batch drawn fresh, the test points too."""
    from . import four_circles

    record = data_record("four circles (paper A.5)", "generated: radius-2 circles centred on (+-1, +-1), noise 0.1; "
                         f"fresh training batches, {four_circles.TEST_SIZE:,} test points of seed "
                         f"{four_circles.TEST_SEED}", False, role="training and test")
    return RunData(four_circles.sample_batch, None, None, [record])


# --------------------------------------------------------------------------------------------
# eval and sample: any checkpoint or run folder
# --------------------------------------------------------------------------------------------

def experiment_of(config):
    """The experiment a model belongs to, from its config's builder."""
    builder = config.get("builder") if isinstance(config, dict) else None
    if builder in _DIRECT_BUILDERS:
        raise ValueError(f"the model was built directly by funnelkit.models.{builder}, whose config names no data "
                         f"set or preprocessing, so it belongs to no experiment; expected a model built by "
                         f"{_DIRECT_BUILDERS[builder]}")
    if builder not in _EXPERIMENT_OF_BUILDER:
        raise ValueError(f"the model's builder {builder!r} belongs to no experiment; expected one of "
                         f"{', '.join(map(repr, _EXPERIMENT_OF_BUILDER))}")
    return _EXPERIMENT_OF_BUILDER[builder]


def spec_of(model, run, root=None, description=None):
    """The :class:`Spec` of a trained model (its config), with ``root`` (else the one stored in the
    run folder's ``metrics.json``, else the kit's cache) and the run's seed
    (:func:`funnelkit.runs.describe_run`)."""
    config = model.config
    experiment = experiment_of(config)
    description = description if description is not None else folders.describe_run(run)
    root = root if root is not None else description.root
    return Spec(experiment, config["name"], config["preset"], config.get("dataset"),
                config.get("bits") if experiment == "images" else None,
                config.get("latent_size") if experiment == "anomaly" else None, root,
                seed=description.seed)


def stored_metrics(run):
    """The ``metrics.json`` beside a run's checkpoint in the current format
    (:func:`funnelkit.runs.read_metrics`), or None."""
    path = Path(run)
    folder = folders.folder_of(path)
    if not (folder / CHECKPOINT_NAME).is_file() and not path.is_file():
        return None
    return folders.read_metrics(folder)


def load_run(run, device="cpu"):
    """The model of a checkpoint file or run folder (checked: CheckpointError if unreadable)."""
    read_checkpoint(run)  # a missing or corrupt file fails with its own message
    return load(run, device=device)


def describe(run) -> folders.RunDescription:
    """The :class:`funnelkit.runs.RunDescription` of a checkpoint file or run folder, checked (a
    missing or corrupt checkpoint fails here; a model of no experiment is refused, naming why)."""
    payload = read_checkpoint(run)
    experiment_of(payload["config"])  # a model of no experiment: the reason, in one line
    return folders.describe_run(run, payload)


def evaluate_run(run, root=None, test_max=None, from_metrics=False, device="cpu", progress=False):
    """``(model, spec, numbers, records, how)``: the run's test numbers, recomputed on the test data
    (or, with ``from_metrics``, read from its ``metrics.json``). Four circles are scored on the
    cpu, on ``test_max`` (default 100,000) fresh points beside the true density, and take no ``root``."""
    description = describe(run)
    if description.experiment == "four-circles":
        return _evaluate_four_circles(run, description, root, test_max, from_metrics)
    model = load_run(run, device)
    spec = spec_of(model, run, root, description)
    if from_metrics:
        folder = folders.folder_of(run)
        if not description.evaluation:
            raise ValueError(f"no evaluation in {folder / METRICS_NAME}: expected the metrics.json that "
                             "`funnelkit train` writes; run `funnelkit eval` without --from-metrics to compute it")
        how = "read from metrics.json" if (folder / METRICS_NAME).is_file() else "read from the checkpoint"
        return model, spec, description.evaluation, list(description.data), how
    data = load_data(spec, test_max)
    numbers, _ = evaluate(spec, model, data, progress)
    return model, spec, numbers, data.records, "recomputed on the test data"


def _evaluate_four_circles(run, description, root, test_max, from_metrics):
    from . import four_circles

    if root is not None:
        raise ValueError("four-circles runs take no --root (their test points are drawn fresh)")
    model = load(run)
    spec = spec_of(model, run, None, description)
    if from_metrics:  # the numbers train stored in metrics.json (or, for a lone checkpoint, in it)
        numbers = description.evaluation
        if "model_ll" not in numbers:
            raise ValueError(f"{run} holds no stored test numbers; run `funnelkit eval` without --from-metrics")
        return model, spec, numbers, four_circles_data().records, "read from metrics.json"
    numbers = four_circles.evaluate(model, n=test_max or four_circles.TEST_SIZE)
    return model, spec, numbers, four_circles_data().records, "recomputed on fresh points"


def format_eval(model, spec, run, numbers, records, how) -> str:
    """What ``funnelkit eval`` prints: the run and model, the data, the test numbers
    (four circles: the model line and the numbers beside the true density)."""
    if spec.experiment == "four-circles":
        return (f"{run}: {spec.model} ({spec.preset} preset), latent dim {model.latent_dim}\n"
                + format_numbers(spec, numbers))
    return "\n".join([describe_model(model, spec, run), format_data(records),
                      format_numbers(spec, numbers, model.exact, how)])


def describe_model(model, spec, run):
    """Two lines: the run and model, parameters, latent size, exact or a bound."""
    if spec.experiment == "four-circles":
        what = "four circles, 2-D"
    elif spec.experiment == "tabular":
        what = spec.dataset
    elif spec.experiment == "images":
        what = f"{DATASET_NAMES.get(spec.dataset, spec.dataset)}, {spec.bits}-bit"
    else:
        what = "MNIST 8-bit" + ("" if spec.model == "nsf" else f", latent size {spec.latent_size}")
    likelihood = "exact" if model.exact else "a bound (the ELBO), not exact"
    return (f"{run}: {spec.model} ({spec.experiment}: {what}; {spec.preset} preset)\n"
            f"  {model.num_parameters():,} parameters; latent size {model.latent_dim:,} of "
            f"{math.prod(model.data_shape):,}; log_prob is {likelihood}")


def format_numbers(spec, numbers, exact=True, how=None):
    """The test numbers as lines: nats, bits/dim, or both sets' bits/dim, +- 2 s.e."""
    how = f"; {how}" if how else ""
    bound = "" if exact else " (ELBO: a bound)"
    if spec.experiment == "four-circles":
        from .four_circles import format_numbers as four_circles_numbers

        return four_circles_numbers(numbers)
    if spec.experiment == "tabular":
        return (f"test log-likelihood{bound} ({numbers['n']:,} rows, nats, mean +- 2 s.e.{how})\n"
                f"  {numbers['ll']:.4f} +- {numbers['ll_2se']:.4f}")
    if spec.experiment == "images":
        return (f"test bits/dim{bound} ({numbers['n']:,} images, mean +- 2 s.e.{how})\n"
                f"  {numbers['bpd']:.4f} +- {numbers['bpd_2se']:.4f}")
    return (f"test bits/dim{bound} (mean +- 2 s.e.{how})\n"
            f"  MNIST (in distribution, {numbers['n_in']:,} images): "
            f"{numbers['mnist']:.4f} +- {numbers['mnist_2se']:.4f}\n"
            f"  Fashion-MNIST (out of distribution, {numbers['n_out']:,} images): "
            f"{numbers['f_mnist']:.4f} +- {numbers['f_mnist_2se']:.4f}\n"
            f"  ratio F-MNIST / MNIST: {numbers['ratio']:.4f} +- {numbers['ratio_2se']:.4f}; "
            f"AUROC {numbers['auroc']:.4f}")


def format_data(records):
    return "data:\n" + "\n".join("  " + data_line(r) for r in records)


_DONE = {"trained": "trained", "resumed": "resumed and finished", "extended": "extended the finished run",
         "loaded": "loaded the finished run (not trained again)"}


def format_train(run, data, spec):
    """What ``funnelkit train`` prints: the model, the data, the test numbers, the training, the files."""
    training = run.metrics["training"]
    extensions = training.get("extensions") or []
    extended = (f"; extended {len(extensions)} time(s) with a fresh schedule, from step "
                f"{', '.join(format(e['from_step'], ',') for e in extensions)}" if extensions else "")
    names = [name for name in (CHECKPOINT_NAME, METRICS_NAME, EVALUATION_NAME) if (run.out / name).is_file()]
    files = ", ".join(str(run.out / name) for name in names[:-1]) + f" and {run.out / names[-1]}" \
        if len(names) > 1 else str(run.out / names[0])
    return "\n".join([
        describe_model(run.model, spec, run.out),
        format_data(data.records),
        format_numbers(spec, run.metrics["evaluation"], run.metrics["exact"]),
        f"{_DONE[run.status]}: {training['steps']:,} steps of batch {training['config']['batch_size']}, "
        f"lr {training['config']['lr']:g} ({training['train_seconds']:.1f} s of training{extended})",
        f"{'read' if run.status == 'loaded' else 'wrote'} {files}",
    ])


#: How ``funnelkit sample`` says what the temperature scaled (keys: funnelkit.models.tempering.TEMPER_MODES).
TEMPERED = {"base": "the base noise only", "all": "the base and the decoders' noise",
            "mean": "the base noise; decoder means"}
#: How many samples ``funnelkit sample`` draws when ``--n`` is not given.
DEFAULT_SAMPLES = {"four-circles": 20_000, "tabular": 5000, "images": 64, "anomaly": 64}


def sample_run(run, out, temperature=1.0, n=None, seed=0, device="cpu", temper="base"):
    """Save ``n`` samples of a run at ``temperature`` as a PNG: a 2-D histogram (four circles,
    sampled on the cpu), a grid of images, or a corner plot of the first (up to 4) dimensions of
    tabular data. ``temper`` says what the temperature scales (:mod:`funnelkit.models.tempering`):
    "base" (the paper's), "all" or "mean". A bad temperature or mode is refused before anything
    is loaded or written. Returns ``(path, n, spec)``."""
    from ..models.tempering import check_sampling_temperature, check_temper

    temperature, temper = check_sampling_temperature(temperature), check_temper(temper)
    description = describe(run)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {out}")
    model = load_run(run, "cpu" if description.experiment == "four-circles" else device)
    spec = spec_of(model, run, None, description)
    n = check_positive_int(n if n is not None else DEFAULT_SAMPLES[spec.experiment], "--n")
    if spec.experiment == "four-circles":
        import matplotlib.pyplot as plt

        from ..viz.figures import data_figure

        torch.manual_seed(seed)
        with torch.no_grad():
            samples = model.sample(n, temperature=temperature, temper=temper)
        out.parent.mkdir(parents=True, exist_ok=True)
        figure = data_figure(samples, title=f"{n:,} samples, temperature {temperature:g} ({TEMPERED[temper]})")
        figure.savefig(out, dpi=110)
        plt.close(figure)
    elif spec.experiment == "tabular":
        torch.manual_seed(seed)
        with torch.no_grad():
            samples = model.sample(n, temperature=temperature, temper=temper).cpu()
        tempered = "" if temper == "base" else f", temper {temper}"
        title = f"{n:,} samples of {spec.model} ({spec.dataset}), temperature {temperature:g}{tempered}"
        save_figure(corner_figure(samples, title), out)
    else:
        images = image_runs.samples_uint8(model, n, bits_of(spec), temperature=temperature, seed=seed, temper=temper)
        save_image_grid(images, out, nrow=math.ceil(math.sqrt(n)))
    return out, n, spec


def format_sample(out, n, spec, temperature, temper="base") -> str:
    """What ``funnelkit sample`` prints about the picture :func:`sample_run` wrote."""
    if spec.experiment == "four-circles":
        return f"wrote {out}: {n:,} samples, temperature {temperature:g} ({TEMPERED[temper]})"
    what = "a corner plot of" if spec.experiment == "tabular" else "a grid of"
    return (f"wrote {out}: {what} {n:,} samples of {spec.model} ({spec.experiment}), temperature {temperature:g} "
            f"({TEMPERED[temper]})")


# --------------------------------------------------------------------------------------------
# reproduce: every paper result through one signature
# --------------------------------------------------------------------------------------------

def reproduce_options(result, preset="quick", root=None, runs=None, inception_weights=None, steps=None,
                      download=False, shipped=False) -> dict:
    """The keyword options of ``result``'s entry, checked before anything is read or written.

    ``root`` and ``runs`` (folders) go only to the results that use them
    (:data:`funnelkit.experiments.OPTIONS`); ``inception_weights``, ``steps`` and ``download``
    change what is computed, so a result that does not take them refuses them by name. With
    ``shipped``, a preset or ``steps`` for which the kit ships no runs is refused.
    """
    from . import OPTIONS, RESULTS

    if result not in RESULTS:
        raise ValueError(f"unknown result {result!r}; expected one of {', '.join(RESULTS)}")
    if preset not in PRESETS:  # classroom: the results whose PRESETS have it
        raise ValueError(f"unknown preset {preset!r}; expected 'quick', 'paper' or 'classroom'")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if shipped:
        check_shipped(result, preset, steps)
    given = {"root": root, "runs": runs, "inception_weights": inception_weights, "steps": steps,
             "download": download or None}
    options = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in OPTIONS[result]:
            options[name] = value
        elif name not in ("root", "runs"):  # changes what is computed: refused, so nobody believes it took effect
            raise ValueError(f"{result} takes no --{name.replace('_', '-')}")
    return options


def reproduce(result, preset="quick", out="results", device="auto", progress=True, root=None, runs=None,
              inception_weights=None, steps=None, download=False) -> Path:
    """Reproduce one paper result (:data:`funnelkit.experiments.RESULTS`): train (or load) what it
    needs, evaluate it and write ``out/RESULT.json``, ``out/RESULT.md`` and its figures. Options a
    result does not take are refused (:func:`reproduce_options`). Returns ``out/RESULT.md``."""
    from . import RESULTS

    options = reproduce_options(result, preset, root, runs, inception_weights, steps, download)
    RESULTS[result](preset=preset, out=out, device=device, progress=progress, **options)
    return Path(out) / f"{result}.md"


def shipped_group(result, preset):
    """The folder of ``data/runs`` holding the runs ``reproduce RESULT --preset PRESET`` uses
    (``images-classroom`` for Table 2, Fig. 3, Table 3 and Fig. 4), or None for a result without runs."""
    from . import RUN_GROUPS

    name = RUN_GROUPS.get(result)
    return None if name is None else f"{name}-{preset}"


def shipped_groups():
    """The folders of shipped runs in ``data/runs`` ("images-quick", "images-classroom", ...)."""
    from .shipped import SHIPPED_RUNS

    return {p.name for p in SHIPPED_RUNS.glob("*-*") if p.is_dir()}


def check_shipped(result, preset, steps=None):
    """Refuse ``--shipped`` where no shipped runs are the runs asked for: with ``--steps``, with the
    paper preset, or with a preset of which ``data/runs`` holds no runs for ``result``."""
    from . import RUN_GROUPS

    if steps is not None:
        raise ValueError("--shipped loads the shipped runs at their own steps: use it without --steps")
    groups = shipped_groups()
    if preset == "quick" or shipped_group(result, preset) in groups:
        return
    offers = []
    for other in sorted({name.rsplit("-", 1)[1] for name in groups}):
        results = [r for r in RUN_GROUPS if shipped_group(r, other) in groups]
        offers.append(f"--preset {other} ({', '.join(results)})")
    raise ValueError(f"--shipped: the kit ships no {preset}-preset runs of {result}; --shipped works with "
                     f"{' and '.join(offers) or 'none: data/runs holds no runs'}")


def corner_figure(samples, title, max_dims=4, bins=60):
    """A corner plot of the first ``max_dims`` dimensions: histograms on the diagonal, 2-D
    histograms below it."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    k = min(max_dims, x.shape[1])
    low, high = np.percentile(x[:, :k], 0.5, axis=0), np.percentile(x[:, :k], 99.5, axis=0)
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k, 2.2 * k), squeeze=False, facecolor="white")
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(x[:, i], bins=bins, range=(low[i], high[i]), color="tab:blue")
                ax.set_yticks([])
            else:
                ax.hist2d(x[:, j], x[:, i], bins=bins, range=[(low[j], high[j]), (low[i], high[i])], cmap="viridis")
            if i == k - 1:
                ax.set_xlabel(f"$x_{{{j + 1}}}$")
            if j == 0 and i > 0:
                ax.set_ylabel(f"$x_{{{i + 1}}}$")
    shown = f"first {k} of {x.shape[1]} dimensions" if k < x.shape[1] else f"{k} dimensions"
    fig.suptitle(f"{title}\n({shown})", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["DEFAULT_SAMPLES", "EXPERIMENTS", "TEMPERED", "RunData", "Spec", "build_model", "check_shipped", "command",
           "corner_figure", "datasets", "default_out", "describe", "describe_model", "evaluate", "evaluate_run",
           "experiment_of", "format_data", "format_eval", "format_numbers", "format_sample", "format_train",
           "load_data", "load_run", "make_spec", "model_names", "reproduce", "reproduce_options", "sample_run",
           "shipped_group", "shipped_groups", "spec_of", "stored_metrics", "train", "training_settings"]
