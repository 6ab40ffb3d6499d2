"""What ``funnelkit train|eval|sample|reproduce`` do for every experiment (four circles' test
numbers are :mod:`funnelkit.experiments.four_circles`'); :mod:`funnelkit.cli` parses and prints.

Each experiment is one object (:class:`funnelkit.experiments.trainable.Experiment`) in
:data:`TRAINABLE`; every command goes through it. One run of one model, in a run folder, by
:func:`funnelkit.experiments.runs.train_or_load`
(resumable; a finished run is loaded, not trained again; ``--extend`` continues a finished one;
a folder made with other settings is refused before anything is written). Run folders are read
through :mod:`funnelkit.runs`. The data, the split and the training settings are those of the
reproduce entries, whose loaders are reused here:

* ``four-circles`` (Fig. 2, A.5): fresh draws of four circles, the presets of
  :data:`funnelkit.experiments.four_circles.TRAIN_PRESETS`; the test log-likelihood beside the
  true density's.

* ``tabular`` (Table 1, A.6): a MAF set (:func:`funnelkit.experiments.tabular_runs.load_data`, never a
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

from pathlib import Path

from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, read_checkpoint
from ..models.tempering import check_sampling_temperature, check_temper
from ..validation import check_choice, check_positive_int
from . import OPTIONS, RESULTS, RUN_GROUPS
from . import shipped as shipped_runs
from .four_circles_experiment import FOUR_CIRCLES
from .image_experiments import ANOMALY, IMAGES
from .tabular_runs import TABULAR
from .trainable import Spec, command, load_run

#: The experiments ``funnelkit train`` trains, each through its one object.
TRAINABLE = {experiment.name: experiment for experiment in (FOUR_CIRCLES, TABULAR, IMAGES, ANOMALY)}
EXPERIMENTS = tuple(TRAINABLE)
#: The presets ``funnelkit reproduce`` takes (the results whose presets have classroom take it).
PRESETS = ("quick", "paper", "classroom")
DEFAULT_DATASET = {name: e.default_dataset for name, e in TRAINABLE.items() if e.default_dataset is not None}
#: Builders whose config names no experiment's data (so eval cannot rebuild the test set), and
#: the experiment builder that makes the same model with its data named.
_DIRECT_BUILDERS = {
    "tabular_f_mlp": "funnelkit.models.tabular_model('f-mlp', DATASET) or `funnelkit train tabular --model f-mlp`",
    "anomaly_f_mlp": "funnelkit.models.anomaly_model('f-mlp', LATENT_SIZE) or `funnelkit train anomaly --model f-mlp`",
}


def model_names(experiment: str) -> tuple:
    """The model names ``funnelkit train EXPERIMENT --model`` takes."""
    return TRAINABLE[experiment].models


def datasets(experiment: str) -> tuple:
    """The data sets ``funnelkit train EXPERIMENT --dataset`` takes (tabular and images)."""
    return TRAINABLE[experiment].datasets


def make_spec(experiment, model="f-nsf", preset="quick", dataset=None, bits=None, latent_size=None, root=None,
              download=False, steps=None, seed=None):
    """A checked :class:`Spec` (the experiment's defaults filled in); bad input is a ValueError
    naming what was expected, raised before any data is read or anything written."""
    check_choice(experiment, EXPERIMENTS, "experiment")
    chosen = TRAINABLE[experiment]
    given = {"dataset": dataset, "bits": bits, "latent_size": latent_size, "root": root, "download": download or None}
    for option, value in given.items():
        if value is not None and option not in chosen.options:
            takes = ", ".join("--" + o.replace("_", "-") for o in chosen.options)
            raise ValueError(f"{experiment} takes no --{option.replace('_', '-')}"
                             + (f"; its options: {takes}" if takes else " (its data are drawn fresh)"))
    check_choice(preset, chosen.presets, "preset")
    check_choice(model, chosen.models, chosen.model_kind)
    if chosen.default_dataset is not None:
        dataset = dataset if dataset is not None else chosen.default_dataset
        check_choice(dataset, chosen.datasets, f"{experiment} dataset")
    bits, latent_size = chosen.data_options(model, bits, latent_size)
    if preset == "classroom":
        _check_classroom(chosen, dataset)
    if steps is not None:
        check_positive_int(steps, "--steps")
    return Spec(experiment, model, preset, dataset, bits, latent_size, None if root is None else str(root),
                bool(download), steps, 0 if seed is None else seed)


def _check_classroom(experiment, dataset):
    if not experiment.classroom:
        defined = ", ".join(name for name, e in TRAINABLE.items() if e.classroom)
        raise ValueError(f"the classroom preset is defined for the experiments {defined}, not for "
                         f"{experiment.name}; expected --preset quick or paper")
    if experiment.classroom_datasets is not None and dataset not in experiment.classroom_datasets:
        raise ValueError(f"the classroom preset of {experiment.name} is defined for --dataset "
                         f"{' or '.join(experiment.classroom_datasets)}, not for {dataset}; "
                         "expected --preset quick or paper")


def default_out(spec):
    """``runs/EXPERIMENT-DATA-MODEL-PRESET`` (``-sN`` appended when ``--steps`` is given)."""
    parts = [spec.experiment, TRAINABLE[spec.experiment].folder_part(spec), spec.model, spec.preset]
    parts += [f"s{spec.steps}"] if spec.steps else []
    return Path("runs") / "-".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# Training settings, the model, the data
# --------------------------------------------------------------------------------------------

def training_settings(spec):
    """``{"steps", "batch_size", "lr"[, "grad_clip_norm"]}`` of a run (``--steps`` wins)."""
    settings = TRAINABLE[spec.experiment].training_settings(spec)
    return {**settings, "steps": spec.steps} if spec.steps else settings


def build_model(spec):
    """The model of a run, freshly initialised (seeded with the run's seed)."""
    return TRAINABLE[spec.experiment].build_model(spec)


def bits_of(spec):
    """The bit depth of a run's images (8 where the data are not images of several depths)."""
    return TRAINABLE[spec.experiment].bits(spec)


def load_data(spec, test_max=None):
    """The :class:`~funnelkit.experiments.trainable.ExperimentData` of ``spec``; a missing file raises
    DatasetNotFoundError before anything is written. ``test_max`` keeps the first that many test
    examples (of each set)."""
    return TRAINABLE[spec.experiment].load_data(spec, test_max)


def evaluate(spec, model, data, progress=False):
    """``(numbers, arrays)`` on the test data: nats (tabular), bits/dim (images), bits/dim on
    both sets, ratio and AUROC (anomaly)."""
    return TRAINABLE[spec.experiment].evaluate(spec, model, data, progress)


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

def train(spec, out=None, device="auto", progress=True, amp=False, extend=False):
    """Train (or resume, load or, with ``extend``, extend) the run of ``spec`` in ``out``; returns
    ``(Run, ExperimentData)``.

    Writes ``checkpoint.pt``, ``metrics.json`` (with the data used and the command that makes the
    run) and ``evaluation.pt`` (the per-example test values, where there are some) in ``out``
    (default :func:`default_out`). A folder holding a run with other settings is refused
    (:class:`funnelkit.runs.RunMismatch`) before anything is written. ``device`` may be a
    ``torch.device`` (under torchrun: each rank's).
    """
    out = Path(out) if out is not None else default_out(spec)
    return TRAINABLE[spec.experiment].train(spec, out, training_settings(spec), command(spec, out), device=device,
                                            progress=progress, amp=amp, extend=extend)


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
    if builder not in folders.EXPERIMENT_OF_BUILDER:
        raise ValueError(f"the model's builder {builder!r} belongs to no experiment; expected one of "
                         f"{', '.join(map(repr, folders.EXPERIMENT_OF_BUILDER))}")
    return folders.EXPERIMENT_OF_BUILDER[builder]


def spec_of(model, run, root=None, description=None):
    """The :class:`Spec` of a trained model (its config), with ``root`` (else the one stored in the
    run folder's ``metrics.json``, else the kit's cache) and the run's seed
    (:func:`funnelkit.runs.describe_run`)."""
    return TRAINABLE[experiment_of(model.config)].spec_of(model, run, root, description)


def stored_metrics(run):
    """The ``metrics.json`` beside a run's checkpoint in the current format
    (:func:`funnelkit.runs.read_metrics`), or None."""
    path = Path(run)
    folder = folders.folder_of(path)
    if not (folder / CHECKPOINT_NAME).is_file() and not path.is_file():
        return None
    return folders.read_metrics(folder)


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
    return TRAINABLE[description.experiment].evaluate_run(run, description, root, test_max, from_metrics, device,
                                                          progress)


def draw_samples(run, temperature=1.0, n=None, seed=0, device="cpu", temper="base"):
    """``(samples, n, spec)``: ``n`` samples of a run at ``temperature`` (default ``n``: the
    experiment's), seeded by ``seed``: points or rows (n, D) on the cpu (four circles are sampled
    on the cpu), or uint8 images (n, C, H, W). ``temper`` says what the temperature scales
    (:mod:`funnelkit.models.tempering`): "base" (the paper's), "all" or "mean". A bad temperature
    or mode is refused before anything is loaded."""
    temperature, temper = check_sampling_temperature(temperature), check_temper(temper)
    description = describe(run)
    experiment = TRAINABLE[description.experiment]
    model = load_run(run, "cpu" if experiment.samples_on_cpu else device)
    spec = experiment.spec_of(model, run, None, description)
    n = check_positive_int(n if n is not None else experiment.default_samples, "--n")
    return experiment.draw_samples(model, spec, n, temperature, seed, temper), n, spec


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
    options = reproduce_options(result, preset, root, runs, inception_weights, steps, download)
    RESULTS[result](preset=preset, out=out, device=device, progress=progress, **options)
    return Path(out) / f"{result}.md"


def shipped_group(result, preset):
    """The folder of ``data/runs`` holding the runs ``reproduce RESULT --preset PRESET`` uses
    (``images-classroom`` for Table 2, Fig. 3, Table 3 and Fig. 4), or None for a result without runs."""
    name = RUN_GROUPS.get(result)
    return None if name is None else f"{name}-{preset}"


def shipped_groups():
    """The folders of shipped runs in ``data/runs`` ("images-quick", "images-classroom", ...)."""
    return {p.name for p in shipped_runs.SHIPPED_RUNS.glob("*-*") if p.is_dir()}


def check_shipped(result, preset, steps=None):
    """Refuse ``--shipped`` where no shipped runs are the runs asked for: with ``--steps``, with the
    paper preset, or with a preset of which ``data/runs`` holds no runs for ``result``."""
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


__all__ = ["DEFAULT_DATASET", "EXPERIMENTS", "PRESETS", "TRAINABLE", "bits_of", "build_model", "check_shipped",
           "datasets", "default_out", "describe", "draw_samples", "evaluate", "evaluate_run", "experiment_of",
           "load_data", "make_spec", "model_names", "reproduce", "reproduce_options", "shipped_group",
           "shipped_groups", "spec_of", "stored_metrics", "train", "training_settings"]
