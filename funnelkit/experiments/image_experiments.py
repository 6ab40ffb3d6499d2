"""The experiments ``funnelkit train images`` (Table 2, A.8, Table 7) and ``funnelkit train
anomaly`` (Table 4, A.9): their objects for :mod:`funnelkit.experiments.commands`, over the
shared parts of :mod:`.image_runs` and :mod:`.anomaly_runs` (one module for both: the MNIST-like
images of the paper preset train with Table 4's settings, and both sample pictures alike).
"""

from dataclasses import replace

from ..data.images import DATASET_NAMES, image_dataset
from ..device import seed_everything
from ..models.anomaly import ANOMALY_MODELS, anomaly_model
from ..models.image import IMAGE_DATASETS, IMAGE_MODELS, TRAINING, image_model
from ..validation import check_choice
from . import anomaly_runs, image_runs
from .results import data_record
from .runs import bpd_summary, dequantised, held_out_split, image_batches, per_example_bpd
from .trainable import Experiment, ExperimentData

DEFAULT_BITS = 5  # Table 2's first column and its quick preset
DEFAULT_LATENT_SIZE = 16
LATENT_SIZES = (4, 16)  # Table 4
TABLE7_DATASETS = ("cifar10", "imagenet64")  # the paper preset's own settings (Table 7); the others: Table 4's


class _Pictures(Experiment):
    """An experiment on images: sampled as uint8 pictures floor(u) 2^(8-b)."""

    default_samples = 64

    def draw_samples(self, model, spec, n, temperature, seed, temper):
        return image_runs.samples_uint8(model, n, self.bits(spec), temperature=temperature, seed=seed, temper=temper)


class Images(_Pictures):
    """``funnelkit train images``: ``paper``: the full train split (1% cut off for validation) and
    the test split, Table 7's batch, rate and steps for CIFAR-10 and ImageNet64 and, for MNIST and
    Fashion-MNIST, the authors' ``AD_config.json`` (Table 4's paper settings); ``quick`` and
    ``classroom``: Table 2's settings on the train split with 1,000 images held out as the test
    (MNIST: the kit's offline first 10,000 training images, a labelled stand-in). Bits/dim."""

    name = "images"
    models = IMAGE_MODELS
    datasets = IMAGE_DATASETS
    default_dataset = "mnist"
    options = ("dataset", "bits", "root", "download")
    classroom = True
    classroom_datasets = ("mnist", "fashion-mnist")

    def data_options(self, model, bits, latent_size):
        bits = DEFAULT_BITS if bits is None else bits
        check_choice(bits, (5, 8), "bits")
        return bits, latent_size

    def folder_part(self, spec):
        return f"{spec.dataset}-{spec.bits}bit"

    def data_label(self, spec):
        return f"{DATASET_NAMES.get(spec.dataset, spec.dataset)}, {spec.bits}-bit"

    def options_of(self, config):
        return {"bits": config.get("bits")}

    def bits(self, spec):
        return spec.bits

    def training_settings(self, spec):
        if spec.preset == "paper" and spec.dataset in TABLE7_DATASETS:
            return dict(TRAINING[spec.dataset, spec.bits])
        if spec.preset == "paper":  # MNIST-like images: A.9's settings, as Table 4
            return ANOMALY.preset_settings(anomaly_runs.PRESETS["paper"], spec.model)
        settings = image_runs.PRESETS[spec.preset]
        return {"steps": image_runs.steps_of(settings, spec.model), "batch_size": settings.batch_size,
                "lr": settings.lr}

    def build_model(self, spec):
        seed_everything(spec.seed)
        return image_model(spec.model, spec.dataset, spec.bits, preset=spec.preset)

    def read_data(self, spec, test_max):
        if spec.preset == "paper":
            settings = replace(image_runs.PRESETS["paper"], columns=((spec.dataset, spec.bits),),
                               download=spec.download, test_max=test_max)
            column = image_runs.load_columns(settings, spec.root)[0]
            return ExperimentData(image_batches(column.images, spec.bits, column.train_index),
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
        return ExperimentData(image_batches(data.images, spec.bits, train_index), dequantised(validation, spec.bits, seed=1),
                       data.images[test_index][:test_max], [record])

    def evaluate(self, spec, model, data, progress=False):
        batch_size = image_runs.PRESETS[spec.preset].eval_batch_size
        values = per_example_bpd(model, data.test, spec.bits, batch_size=batch_size, progress=progress,
                                 desc="test bits/dim")
        return bpd_summary(values), {"bpd": values}

    def evaluation_key(self, spec, data):
        return {**super().evaluation_key(spec, data), "bits": spec.bits}


class Anomaly(_Pictures):
    """``funnelkit train anomaly``: MNIST at 8 bits and the Fashion-MNIST test set, Table 4's data
    and settings for the preset; bits/dim on both sets, their ratio and the AUROC."""

    name = "anomaly"
    models = ANOMALY_MODELS
    options = ("latent_size", "root", "download")
    classroom = True

    def data_options(self, model, bits, latent_size):
        if model == "nsf" and latent_size is not None:
            raise ValueError("the anomaly nsf keeps all 784 values: it takes no --latent-size")
        latent_size = DEFAULT_LATENT_SIZE if latent_size is None else latent_size  # nsf: ignored by the builder
        check_choice(latent_size, LATENT_SIZES, "latent size")
        return bits, latent_size

    def folder_part(self, spec):
        return "" if spec.model == "nsf" else f"latent{spec.latent_size}"

    def data_label(self, spec):
        return "MNIST 8-bit" + ("" if spec.model == "nsf" else f", latent size {spec.latent_size}")

    def options_of(self, config):
        return {"latent_size": config.get("latent_size")}

    def bits(self, spec):
        return anomaly_runs.BITS

    @staticmethod
    def preset_settings(settings, model):
        """The steps (the VAE's own where set), batch size and rate of a :class:`Table4Settings`."""
        steps = settings.vae_steps if model == "vae" and settings.vae_steps else settings.steps
        return {"steps": steps, "batch_size": settings.batch_size, "lr": settings.lr}

    def training_settings(self, spec):
        return self.preset_settings(anomaly_runs.PRESETS[spec.preset], spec.model)

    def build_model(self, spec):
        seed_everything(spec.seed)
        return anomaly_model(spec.model, spec.latent_size, preset=spec.preset)

    def read_data(self, spec, test_max):
        settings = replace(anomaly_runs.PRESETS[spec.preset], download=spec.download, in_max=test_max,
                           out_max=test_max)
        train, validation, test_in, test_out, records, _ = anomaly_runs.load_data(settings, spec.root)
        bits = anomaly_runs.BITS
        return ExperimentData(image_batches(train, bits), dequantised(validation, bits, seed=1), test_in, records, test_out)

    def evaluate(self, spec, model, data, progress=False):
        return anomaly_runs.score(model, data.test, data.test_out, anomaly_runs.PRESETS[spec.preset], progress)


IMAGES = Images()
ANOMALY = Anomaly()

__all__ = ["ANOMALY", "DEFAULT_BITS", "DEFAULT_LATENT_SIZE", "IMAGES", "LATENT_SIZES", "Anomaly", "Images"]
