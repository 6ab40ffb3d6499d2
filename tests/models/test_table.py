"""The table of every model: each row agrees with the model its builder makes."""

import pytest

import funnelkit as fk


def test_rows_describe_the_models_their_builders_make():
    rows = fk.models.model_table("quick", families=("plane", "tabular"))
    assert len(rows) == 2 + len(fk.models.TABULAR_MODELS) * len(fk.models.TABULAR_DATASETS)
    by_key = {(row.family, row.name, row.setting): row for row in rows}
    f_nsf = by_key[("tabular", "f-nsf", "gas")]
    model = fk.models.tabular_model("f-nsf", "gas", preset="quick")
    assert (f_nsf.parameters, f_nsf.data_dim, f_nsf.latent_dim) == (model.num_parameters(), 8, model.latent_dim)
    assert f_nsf.latent_dim < f_nsf.data_dim and f_nsf.likelihood == "exact"
    assert all(row.likelihood == ("bound" if row.name == "vae" else "exact") for row in rows)
    assert by_key[("plane", "f-nsf", "four circles")].latent_dim == 1


def test_the_formatted_table_has_a_line_per_model_and_names_bounds():
    rows = fk.models.model_table("quick", families=("plane",))
    text = fk.models.format_model_table(rows)
    assert text.count("\n") == 2 + len(rows)
    assert "| plane | f-nsf | four circles |" in text
    vae = fk.models.model_table("quick", families=("tabular",))
    assert "bound" in fk.models.format_model_table([row for row in vae if row.name == "vae"])


def test_unknown_family_or_preset_is_named():
    with pytest.raises(ValueError, match="model family"):
        fk.models.model_table("quick", families=("audio",))
    with pytest.raises(ValueError, match="preset"):
        fk.models.model_table("huge")


def test_builders_match_names_and_datasets_without_regard_to_case():
    pairs = [
        (fk.models.plane_model("F-NSF", preset="quick"), fk.models.plane_model("f-nsf", preset="quick")),
        (fk.models.tabular_model("F-NSF", "POWER", preset="quick"), fk.models.tabular_model("f-nsf", "power", preset="quick")),
        (fk.models.image_model("NSF", "MNIST", 5, preset="quick"), fk.models.image_model("nsf", "mnist", 5, preset="quick")),
        (fk.models.anomaly_model("F-MLP", 4, preset="quick"), fk.models.anomaly_model("f-mlp", 4, preset="quick")),
    ]
    for upper, lower in pairs:
        assert upper.config == lower.config and upper.num_parameters() == lower.num_parameters()
