"""Table 2 (test bits per dimension and latent size of NSF, F-NSF and VAE on images) and Fig. 3
(samples of the F-NSF); paper Sec. 4 "Image Data", A.8, Table 7.

Presets:

* ``"paper"``: CIFAR-10 and ImageNet64 ("small", van den Oord et al.), 5 and 8 bits, the
  paper-preset models (:func:`funnelkit.models.image.image_model`) trained with Table 7 / A.8:
  Adam, learning rate 5e-4 cosine-annealed to 0, batch 512 (CIFAR-10) or 256 (ImageNet64),
  100,000 steps at 5 bits and 200,000 at 8 bits, for every model: the funnels too, where A.8 says
  "All funnel experiments are run for 12 hours" (a wall-clock budget on an RTX 3090 that no
  other machine repeats; docs/errata.md). Bits/dim are on the **test** split (the
  authors' code reported a 1% validation split of train, reference note 6.3 item 7); 1% of
  train, cut by a fixed seed, is the validation split the Trainer reports during training.
  Missing files raise :class:`~funnelkit.data.cache.DatasetNotFoundError` before anything is
  trained or written.
* ``"quick"``: a **stand-in** for CIFAR-10 5-bit, labelled as one: MNIST at 5 bits (the kit's
  offline first 10,000 training images, also where the full MNIST is there: a quick run is the
  same on every machine, and the shipped runs of ``data/runs`` are its runs), split by a fixed seed into training images
  and 1,000 held-out ones, with the quick MNIST models (``image_model(name, "mnist", 5,
  "quick")``: NSF, F-NSF with latent 16, MLP VAE with latent 16), 400 steps of batch 64 at
  learning rate 1e-3 (cosine-annealed), 4,000 for the VAE (its steps are cheap, and its single
  output scale needs them to move; see :mod:`funnelkit.experiments.table4`). Not comparable with
  the paper's numbers; the table says so.
* ``"classroom"``: the same stand-in data and split, with the classroom MNIST models
  (``image_model(name, "mnist", 5, "classroom")``, sized by measurement for a 2-core laptop CPU:
  ``benchmarks/results/classroom_sweep.md``), batches of 64 at 2e-3 (cosine): the F-NSF
  ``CLASSROOM_STEPS`` steps, the NSF ``CLASSROOM_NSF_STEPS`` (its steps cost about twice an
  F-NSF's, so both had about 35-40 CPU minutes) and the VAE ``CLASSROOM_VAE_STEPS``: the steps of
  the runs shipped in ``data/runs/images-classroom`` (``data/runs/README.md``), so
  ``funnelkit reproduce table2 --preset classroom --shipped`` (or :func:`use_shipped` into the runs
  folder) loads them instead of training. Those runs were made in stages with ``--extend`` (each
  stage a fresh cosine schedule; ``metrics.json`` lists the stages, and the table says so); trained
  here from scratch, the preset runs one cosine schedule over all its steps instead.

Every model is trained by :func:`funnelkit.experiments.runs.train_or_load` in
``<runs>/images-<preset>/<data>-<model>``; Table 3 and Fig. 4 use the same runs (so they load
what Table 2 trained, and the other way round). Bits per dimension: -log p(u) / (D ln 2) of the
b-bit images dequantised with a fixed noise, two standard errors; the VAE's is its ELBO, a bound.
Training keeps the Trainer's gradient-norm clipping at 5 (A.8 is silent; the authors' image code
did not clip) as a guard against rare divergence.

Fig. 3 is a grid of F-NSF samples at temperature 1 (``fig3.png``), pixels floor(u) 2^(8-b).
"""

import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.dequantize import to_uint8_images
from ..data.images import image_dataset
from ..device import pick_device, seed_everything
from . import paper_numbers as paper
from .results import count, data_line, data_record, pm, save_image_grid, table, write_result
from .runs import (bpd_summary, choose_settings, dequantised, held_out_split, image_batches, per_example_bpd,
                   runs_folder, train_config, train_or_load)

NAME = "table2"
RUNS_NAME = "images"  # the run folders Table 2, Table 3 and Fig. 4 share
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
    from ..models.image import TRAINING

    paper_training = TRAINING.get((column.dataset, column.bits), {})
    steps = settings.steps or paper_training.get("num_steps")
    batch = settings.batch_size or paper_training.get("batch_size")
    lr = settings.lr or paper_training.get("learning_rate")
    if not (steps and batch and lr):
        raise ValueError(f"no training settings for {column.dataset} {column.bits}-bit: give steps, batch_size and lr")
    return steps, batch, lr


def _custom_tag(settings):
    if settings.model_overrides:
        return f"-custom{zlib.crc32(repr(sorted(settings.model_overrides.items())).encode()):08x}"
    return ""


def train_image_models(column, settings, preset, device, progress=True, runs=None, models=None):
    """Train (or load) the image models of one column: ``{name: Run}`` with bits/dim on the test images."""
    from ..models.image import image_model

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
            name=f"{column.tag} {name}", describe={"data": column.records, "result": NAME},
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


# --------------------------------------------------------------------------------------------
# The entries
# --------------------------------------------------------------------------------------------

def reproduce_table2(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None, **overrides):
    """Train (or load) NSF, F-NSF and VAE per column; write ``table2.json``, ``table2.md`` and ``fig3.png``.

    ``overrides`` change :class:`ImageSettings` fields (``steps``, ``batch_size``, ``lr``,
    ``held_out``, ``test_max``, ``model_overrides``, ...).
    """
    settings = choose_image_settings(PRESETS, preset, overrides, NAME)
    columns = load_columns(settings, root)  # raises before anything is written when a file is missing
    device = pick_device(device)
    started = time.perf_counter()
    ours, records, figures = {}, [], []
    for column in columns:
        column_runs = train_image_models(column, settings, preset, device, progress, runs)
        key = f"{column.dataset}-{column.bits}"
        ours[key] = {name: run_row(run) for name, run in column_runs.items()}
        records += column.records
        if "f-nsf" in column_runs:
            path = f"fig3_{key}.png" if len(columns) > 1 else "fig3.png"
            save_image_grid(samples_uint8(column_runs["f-nsf"].model, settings.fig3_samples, column.bits),
                            _path(out, path))
            figures.append(path)
    result = {
        "result": NAME,
        "preset": preset,
        "device": str(device),
        "data": records,
        "stand_in": any(r["stand_in"] for r in records),
        "columns": [f"{c.dataset}-{c.bits}" for c in columns],
        "paper_columns": _paper_columns(columns),
        "paper": {model: {c: list(v) for c, v in row.items()} for model, row in paper.TABLE2.items()},
        "ours": ours,
        "figures": figures,
        "seconds_this_call": time.perf_counter() - started,
        "settings": _plain_settings(settings),
    }
    write_result(out, NAME, result, markdown(result))
    return result


def run_row(run):
    """What Table 2 reports of one run: its test numbers, sizes, steps, training seconds (the
    Trainer's clock), the stages it was trained in (``[first, ..., steps]``: one entry unless
    extended with ``--extend``), how it was got (trained, loaded, ...) and its folder."""
    training = run.metrics["training"]
    extensions = training.get("extensions") or []
    stages = [extensions[0]["from_step"], *[e["to_step"] for e in extensions]] if extensions else [training["steps"]]
    return {**run.metrics["evaluation"], "latent_dim": run.metrics["latent_dim"],
            "parameters": run.metrics["parameters"], "exact": run.metrics["exact"], "steps": training["steps"], "train_seconds": training.get("train_seconds"),
            "stages": stages, "status": run.status, "run": str(run.out)}


def reproduce_fig3(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None, **overrides):
    """Fig. 3: a grid of F-NSF samples at temperature 1 per column (trains or loads only the F-NSF)."""
    settings = choose_image_settings(PRESETS, preset, overrides, "fig3")
    columns = load_columns(settings, root)
    device = pick_device(device)
    figures, rows = [], {}
    for column in columns:
        run = train_image_models(column, settings, preset, device, progress, runs, models=("f-nsf",))["f-nsf"]
        key = f"{column.dataset}-{column.bits}"
        path = f"fig3_{key}.png" if len(columns) > 1 else "fig3.png"
        save_image_grid(samples_uint8(run.model, settings.fig3_samples, column.bits), _path(out, path))
        figures.append(path)
        rows[key] = {**run.metrics["evaluation"], "latent_dim": run.metrics["latent_dim"], "run": str(run.out)}
    records = [r for c in columns for r in c.records]
    result = {"result": "fig3", "preset": preset, "data": records, "stand_in": any(r["stand_in"] for r in records),
              "figures": figures, "samples": settings.fig3_samples, "temperature": 1.0, "ours": rows,
              "settings": _plain_settings(settings)}
    lines = [f"# Fig. 3: samples of the F-NSF at temperature 1 ({preset} preset)", "",
             "The paper shows F-NSF samples for CIFAR-10 5-bit (left) and ImageNet64 5-bit (right).", "",
             "Data:", *[data_line(r) for r in records], "",
             *[f"- `{f}`: {settings.fig3_samples} samples; the model's test bits/dim "
               f"{pm(rows[k]['bpd'], rows[k]['bpd_2se'], 3)}, latent {rows[k]['latent_dim']:,}"
               for f, k in zip(figures, rows)], ""]
    write_result(out, "fig3", result, "\n".join(lines))
    return result


def _minutes(seconds):
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def _path(out, name):
    return Path(out) / name


def _plain_settings(settings):
    return asdict(settings)


def _paper_columns(columns):
    """The paper's column each of ours sits beside (quick: MNIST 5-bit beside CIFAR-10 5-bit)."""
    out = {}
    for c in columns:
        dataset = "cifar10" if c.dataset == "mnist" else c.dataset
        out[f"{c.dataset}-{c.bits}"] = f"{dataset}-{c.bits}"
    return out


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

_SHOWN = {"nsf": "NSF", "f-nsf": "F-NSF", "vae": "VAE (ELBO, a bound)", "baseline": "BASELINE", "glow*": "GLOW*"}


def markdown(result):
    """Table 2 beside ours, per column, with the data named."""
    lines = [f"# Table 2: test bits per dimension (BPD, lower is better) and latent size (LS) ({result['preset']} preset)",
             "", "Data:", *[data_line(r) for r in result["data"]], ""]
    if result["stand_in"]:
        lines += ["**Stand-in data**: our numbers are on MNIST (grey digits), not on CIFAR-10; they cannot be "
                  "compared with the paper's column digit for digit. Compare the models with each other: the "
                  "paper's finding is that the F-NSF is close to NSF in bits/dim with a latent 1/16 the size, "
                  "and the VAE far behind.", ""]
    for column in result["columns"]:
        theirs = result["paper_columns"][column]
        dataset, bits = column.rsplit("-", 1)
        ours = result["ours"][column]
        title = paper.TABLE2_COLUMN_NAMES[theirs]
        lines += [f"## {title} (paper) beside {dataset} {bits}-bit (ours{', stand-in' if result['stand_in'] else ''})", ""]
        rows = []
        for model in ("baseline", "nsf", "f-nsf", "vae", "glow*"):
            bpd, ls = paper.TABLE2[model][theirs]
            mine = ours.get(model)
            rows.append([_SHOWN[model], f"{bpd:.2f}", count(ls),
                         pm(mine["bpd"], mine["bpd_2se"], 3) if mine else "-",
                         count(mine["latent_dim"]) if mine else "-",
                         count(mine["parameters"]) if mine else "-",
                         count(mine["steps"]) if mine else "-",
                         _minutes(mine.get("train_seconds")) if mine else "-"])
        lines += [table(["model", "BPD paper", "LS paper", "BPD ours (+- 2 s.e.)", "LS ours", "parameters ours",
                         "steps ours", "training min ours"], rows, "lrrrrrrr"), ""]
        if "nsf" in ours and "f-nsf" in ours:
            gap = ours["f-nsf"]["bpd"] - ours["nsf"]["bpd"]
            steps = ("" if ours["f-nsf"]["steps"] == ours["nsf"]["steps"] else
                     f" (after {ours['f-nsf']['steps']:,} steps of the F-NSF and {ours['nsf']['steps']:,} of NSF)")
            where = "above" if gap > 0 else "below"
            lines.append(f"Here the F-NSF is {abs(gap):.3f} bits/dim {where} NSF{steps} with a latent "
                         f"{ours['nsf']['latent_dim'] / ours['f-nsf']['latent_dim']:.0f} times smaller "
                         f"(paper: {paper.TABLE2['f-nsf'][theirs][0] - paper.TABLE2['nsf'][theirs][0]:+.2f}, 16 times smaller).")
            lines.append("")
        staged = [f"{_SHOWN[m].split(' ')[0]} {' -> '.join(f'{s:,}' for s in row['stages'])}"
                  for m, row in ours.items() if len(row.get("stages") or ()) > 1]
        if staged:
            lines += ["Trained in stages with `--extend` (each stage a fresh cosine learning-rate schedule over its "
                      f"steps, recorded in the run's metrics.json): {'; '.join(staged)} steps. Training minutes: the "
                      "Trainer's clock of the training steps, all stages.", ""]
    lines += ["Rows without a number of ours (BASELINE, GLOW*) are the paper's references; the kit does not train them "
              "(BASELINE, the paper's 'baseline flow with affine transformations', is described no further).",
              "* GLOW: taken by the paper from van den Oord et al. and Kingma et al.", ""]
    if result["figures"]:
        lines += ["Fig. 3 (F-NSF samples at temperature 1): " + ", ".join(f"`{f}`" for f in result["figures"]), ""]
    return "\n".join(lines)


__all__ = ["ImageSettings", "ImageSplits", "PRESETS", "choose_image_settings", "load_columns", "single_column",
           "markdown", "reproduce_fig3", "reproduce_table2", "run_row", "samples_uint8", "steps_of", "train_image_models",
           "training_settings"]
