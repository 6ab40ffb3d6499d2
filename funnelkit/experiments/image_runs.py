"""The image models of Table 2, Table 3 and Fig. 4 (paper Sec. 4 "Image Data", A.8, Table 7):
their settings and presets, their data, their training and their samples, shared by the three
results (:mod:`.table2`, :mod:`.table3`, :mod:`.fig4`), which import them from here and never from
each other.

The presets (``"paper"``, ``"quick"``, ``"classroom"``) are described in
:mod:`funnelkit.experiments.table2`. Every model is trained by
:func:`funnelkit.experiments.runs.train_or_load` in ``<runs>/images-<preset>/<data>-<model>``, so
the three results load what any of them trained. Bits per dimension: -log p(u) / (D ln 2) of the
b-bit images dequantised with a fixed noise, two standard errors; the VAE's is its ELBO, a bound.
Samples become pictures as NSF does: floor(u) 2^(8-b) (:func:`samples_uint8`).
"""

import zlib
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from ..data.dequantize import to_uint8_images
from ..data.images import image_dataset
from ..device import seed_everything
from ..models.image import TRAINING, image_model
from . import paper_numbers as paper
from .results import data_record
from .runs import (bpd_summary, choose_settings, dequantised, held_out_split, image_batches, per_example_bpd,
                   runs_folder, train_config, train_or_load)

RUNS_NAME = "images"  # the run folders Table 2, Table 3 and Fig. 4 share
RESULT = "table2"  # the result these runs are recorded as made by (Table 3 and Fig. 4 reuse Table 2's runs)
SPLIT_SEED = 656_693_568  # the authors' image seed (NSF's configs), for the held-out/validation cut
SAMPLE_SEED = 0
CLASSROOM_STEPS = 9_000  # the classroom preset's F-NSF (and any other flow): see the module docstring
CLASSROOM_NSF_STEPS = 6_000  # its NSF: the shipped run's steps, about the F-NSF's CPU minutes
CLASSROOM_VAE_STEPS = 20_000
PAPER_COLUMNS = (("cifar10", 5), ("cifar10", 8), ("imagenet64", 5), ("imagenet64", 8))


@dataclass(frozen=True)
class ImageSettings:
    """What the image results train and on which data. ``None``: the paper's value (Table 7 / A.8)."""

    columns: tuple = PAPER_COLUMNS  # (dataset, bits)
    models: tuple = paper.TABLE2_MODELS
    model_preset: str = "paper"
    quick_standin: bool = False  # quick: MNIST stands in for CIFAR-10 5-bit
    steps: int = None
    vae_steps: int = None  # the VAE's steps (None: ``steps``); quick: its steps cost a fraction of a flow's
    model_steps: dict = field(default_factory=dict)  # steps of named models, over steps and vae_steps
    batch_size: int = None
    lr: float = None
    held_out: int = 1000  # quick: MNIST training images held out for testing
    validation_fraction: float = 0.01  # paper: 1% of train (valid_frac of the authors' configs)
    validation_max: int = 2000  # the Trainer's periodic validation uses at most this many images
    test_max: int = None  # evaluate on at most this many test images (None: all)
    eval_batch_size: int = 256
    fig3_samples: int = 64
    download: bool = False
    model_overrides: dict = field(default_factory=dict)


PRESETS = {
    "paper": ImageSettings(),
    "quick": ImageSettings(columns=(("mnist", 5),), model_preset="quick", quick_standin=True, steps=400,
                           vae_steps=4000, batch_size=64, lr=1e-3),
    # the classroom models (funnelkit.models.anomaly, sized for a 2-core laptop CPU) on the quick preset's data
    "classroom": ImageSettings(columns=(("mnist", 5),), model_preset="classroom", quick_standin=True,
                               steps=CLASSROOM_STEPS, vae_steps=CLASSROOM_VAE_STEPS,
                               model_steps={"nsf": CLASSROOM_NSF_STEPS}, batch_size=64, lr=2e-3),
}


def choose_image_settings(presets, preset, overrides, result):
    """``presets[preset]`` with ``overrides``, as :func:`funnelkit.experiments.runs.choose_settings`;
    giving ``steps`` alone sets the steps of every model, so a preset's ``model_steps`` are then
    dropped too (give ``model_steps`` as well to keep some)."""
    settings = choose_settings(presets, preset, overrides, result)
    if overrides.get("steps") is not None and overrides.get("model_steps") is None:
        settings = replace(settings, model_steps={})
    return settings


def steps_of(settings, name, flow_steps=None):
    """The training steps of model ``name`` under ``settings``: its entry in ``model_steps``, else
    ``vae_steps`` for the VAE (when set), else ``flow_steps`` (default ``settings.steps``)."""
    if name in settings.model_steps:
        return settings.model_steps[name]
    if name == "vae" and settings.vae_steps:
        return settings.vae_steps
    return settings.steps if flow_steps is None else flow_steps


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class ImageSplits:
    """One (dataset, bits) column: uint8 images, the rows of them to train on, validation and test
    images, and what they are (stand-ins labelled). ``images`` is the loader's whole training
    set; ``train_index`` selects the training rows, so a large set is never copied."""

    dataset: str
    bits: int
    images: torch.Tensor
    train_index: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor
    records: list  # data_record dicts: what was used, stand-ins labelled
    tag: str  # names the run folders: the data they were trained on

    @property
    def stand_in(self):
        return any(r["stand_in"] for r in self.records)


def load_columns(settings, root=None):
    """Every column's :class:`ImageSplits`; a missing file raises before anything is trained.

    A dataset used at two bit depths is loaded once (the bits are reduced batch by batch).
    """
    loaded = {}
    return [_load_column(dataset, bits, settings, root, loaded) for dataset, bits in settings.columns]


def single_column(settings, root, result):
    """The one (dataset, bits) column that Table 3 and Fig. 4 use, loaded; else a ValueError."""
    columns = load_columns(settings, root)
    if len(columns) != 1:
        raise ValueError(f"{result} uses one (dataset, bits) column, got {len(columns)}: {settings.columns}")
    return columns[0]


def _load(name, split, root, settings, loaded, **kwargs):
    if (name, split) not in loaded:
        loaded[name, split] = image_dataset(name, split, root=root, download=settings.download, **kwargs)
    return loaded[name, split]


def _load_column(dataset, bits, settings, root, loaded):
    if settings.quick_standin:
        data = _load("mnist", "train", root, settings, loaded, prefer_offline=True)
        train_index, test_index = held_out_split(len(data), settings.held_out, SPLIT_SEED)
        subset = "first10k" if data.is_stand_in else "full"
        name = ("MNIST first 10k of train (offline subset)" if data.is_stand_in else "MNIST train")
        source = (f"{data.source}; {len(train_index):,} images for training and {len(test_index):,} held out "
                  f"(seed {SPLIT_SEED}) for testing, reduced to {bits} bits. A stand-in for CIFAR-10 {bits}-bit: "
                  "grey 1 x 28 x 28 digits, not colour 3 x 32 x 32 photographs")
        validation = data.images[train_index[: settings.validation_max]]
        return ImageSplits(dataset, bits, data.images, train_index, validation, data.images[test_index],
                           [data_record(name, source, True, role=f"in place of CIFAR-10 {bits}-bit")],
                           f"mnist{bits}-{subset}-h{settings.held_out}")
    kwargs = {"allow_offline": False} if dataset in ("mnist", "fashion-mnist") else {}
    train = _load(dataset, "train", root, settings, loaded, **kwargs)
    test = _load(dataset, "test", root, settings, loaded, **kwargs)
    n_validation = max(1, round(settings.validation_fraction * len(train)))
    train_index, validation_index = held_out_split(len(train), n_validation, SPLIT_SEED)
    test_images = test.images if settings.test_max is None else test.images[: settings.test_max]
    records = [data_record(f"{dataset} {bits}-bit train", f"{train.source}; {len(train_index):,} for training, "
                           f"{n_validation:,} ({settings.validation_fraction:.0%}, seed {SPLIT_SEED}) for validation",
                           train.is_stand_in, role="training"),
               data_record(f"{dataset} {bits}-bit test", f"{test.source}; {len(test_images):,} images evaluated",
                           test.is_stand_in, role="test")]
    validation = train.images[validation_index[: settings.validation_max]]
    return ImageSplits(dataset, bits, train.images, train_index, validation, test_images, records,
                       f"{dataset}-{bits}bit")


# --------------------------------------------------------------------------------------------
# The shared runs
# --------------------------------------------------------------------------------------------

def training_settings(column, settings):
    """(steps, batch size, learning rate) of a column: the settings' values, else Table 7 / A.8."""
    paper_training = TRAINING.get((column.dataset, column.bits), {})
    steps = settings.steps or paper_training.get("steps")
    batch = settings.batch_size or paper_training.get("batch_size")
    lr = settings.lr or paper_training.get("lr")
    if not (steps and batch and lr):
        raise ValueError(f"no training settings for {column.dataset} {column.bits}-bit: give steps, batch_size and lr")
    return steps, batch, lr


def _custom_tag(settings):
    if settings.model_overrides:
        return f"-custom{zlib.crc32(repr(sorted(settings.model_overrides.items())).encode()):08x}"
    return ""


def train_image_models(column, settings, preset, device, progress=True, runs=None, models=None):
    """Train (or load) the image models of one column: ``{name: Run}`` with bits/dim on the test images."""
    flow_steps, batch, lr = training_settings(column, settings)
    folder = runs_folder(runs, RUNS_NAME, preset)
    test_label = [r for r in column.records if r.get("role") != "training"][0]["name"]
    out = {}
    for name in models or settings.models:
        steps = steps_of(settings, name, flow_steps)
        seed_everything(0)
        model = image_model(name, column.dataset, column.bits, preset=settings.model_preset,
                            **settings.model_overrides).to(device)
        config = train_config(steps, batch, lr)
        out[name] = train_or_load(
            model, image_batches(column.images, column.bits, column.train_index), config,
            folder / f"{column.tag}-s{steps}-{name}{_custom_tag(settings)}",
            evaluate=lambda m, images=column.test, bits=column.bits: _evaluate(m, images, bits, settings, progress),
            evaluation_key={"test": test_label, "n": len(column.test), "bits": column.bits},
            validation=_validation(column), progress=progress,
            name=f"{column.tag} {name}", describe={"data": column.records, "result": RESULT},
        )
    return out


def _validation(column):
    return dequantised(column.validation, column.bits, seed=1)


def _evaluate(model, images, bits, settings, progress):
    values = per_example_bpd(model, images, bits, batch_size=settings.eval_batch_size, progress=progress,
                             desc="test bits/dim")
    return bpd_summary(values), {"bpd": values}


@torch.no_grad()
def samples_uint8(model, n, bits, temperature=1.0, seed=SAMPLE_SEED, batch_size=100, progress=False, temper="base"):
    """``n`` samples of ``model`` at ``temperature`` as uint8 pictures floor(u) 2^(8-b), (n, C, H, W).

    Seeded by ``seed`` on a forked generator: torch's global random state is left as it was.
    ``temper`` is the model's (funnelkit.models.tempering): "base" (the paper's), "all" or "mean".
    """
    model.eval()
    device = getattr(model, "device", torch.device("cpu"))
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        starts = range(0, n, batch_size)
        chunks = [model.sample(min(batch_size, n - i), temperature=temperature, temper=temper).cpu()
                  for i in tqdm(starts, desc="sampling", disable=not progress or len(starts) < 2, leave=False)]
    return to_uint8_images(torch.cat(chunks), bits)


__all__ = ["CLASSROOM_NSF_STEPS", "CLASSROOM_STEPS", "CLASSROOM_VAE_STEPS", "ImageSettings", "ImageSplits",
           "PAPER_COLUMNS", "PRESETS", "RESULT", "RUNS_NAME", "SAMPLE_SEED", "SPLIT_SEED", "choose_image_settings",
           "load_columns", "samples_uint8", "single_column", "steps_of", "train_image_models", "training_settings"]
