"""One quantity, one name (README "Vocabulary"): no config dataclass or settings table uses a name
the kit retired, and every retired name that old records may hold is translated to a real field."""

import dataclasses
import importlib
import pkgutil

import pytest

import funnelkit.models
from funnelkit.checkpoints import RENAMED_SETTINGS
from funnelkit.experiments import anomaly_runs, image_runs, tabular_runs
from funnelkit.models.image import TRAINING, ImageConfig
from funnelkit.models.tabular import TabularConfig
from funnelkit.train import TrainConfig

#: Retired names: training_steps / num_steps are ``steps``, learning_rate ``lr``, bins ``num_bins``,
#: latent_size ``latent_dim`` (``latent_size`` lives on only as the anomaly builder's argument).
RETIRED = {"training_steps", "num_steps", "learning_rate", "vae_learning_rate", "bins", "latent_size"}


def _config_classes():
    """Every dataclass defined in ``funnelkit.models``, plus the Trainer's and the experiments' settings."""
    found = {TrainConfig, image_runs.ImageSettings, anomaly_runs.Table4Settings, tabular_runs.Table1Settings}
    for info in pkgutil.iter_modules(funnelkit.models.__path__):
        module = importlib.import_module(f"funnelkit.models.{info.name}")
        found |= {value for value in vars(module).values() if isinstance(value, type)
                  and dataclasses.is_dataclass(value) and value.__module__ == module.__name__}
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__name__}")


def test_the_configs_are_found():
    names = {cls.__name__ for cls in _config_classes()}
    assert {"TabularConfig", "ImageConfig", "AnomalyConfig", "TrainConfig", "ImageSettings"} <= names


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda cls: cls.__name__)
def test_no_config_field_has_a_retired_name(cls):
    assert {field.name for field in dataclasses.fields(cls)} & RETIRED == set()


def test_the_paper_training_table_uses_the_trainers_names():
    for key, settings in TRAINING.items():
        assert set(settings) == {"steps", "batch_size", "lr"}, key


def test_every_translated_name_becomes_a_field_of_todays_config():
    fields = {"tabular": TabularConfig, "image": ImageConfig}
    for builder, renamed in RENAMED_SETTINGS.items():
        current = {field.name for field in dataclasses.fields(fields[builder])}
        assert set(renamed) <= RETIRED and set(renamed.values()) <= current, builder
