"""The plane models of A.5: their structure per preset, and the authors' parameter counts."""

import pytest

import funnelkit as fk
from funnelkit.layers import Funnel


def test_authors_code_preset_reproduces_their_parameter_counts():
    # Counts of the authors' plane_data_generation.py (reference/anchor-paper-code.md, 4.1).
    assert fk.models.plane_model("nsf", preset="authors-code").num_parameters() == 62_970
    assert fk.models.plane_model("f-nsf", preset="authors-code").num_parameters() == 118_130


def test_paper_preset_follows_the_text_of_a5():
    model = fk.models.plane_model("f-nsf", preset="paper")
    funnel = model.layers[-1]
    assert isinstance(funnel, Funnel) and funnel.features_in == 2 and funnel.features_out == 1
    first = model.layers[0]
    assert first.autoregressive_net.initial_layer.out_features == 256  # 256 hidden units
    assert first.num_bins == 50 and first.tail_bound == 4.0
    assert len(first.autoregressive_net.blocks) == 2  # two residual blocks
    decoder_layers = [t for t in funnel.decoder._transform._transforms if hasattr(t, "num_bins")]
    assert len(decoder_layers) == 2
    assert all(t.num_bins == 10 and t.autoregressive_net.initial_layer.out_features == 64 for t in decoder_layers)
    nsf = fk.models.plane_model("nsf", preset="paper")
    assert sum(hasattr(t, "num_bins") for t in nsf.layers) == 2 and nsf.latent_dim == 2


@pytest.mark.parametrize("preset", sorted(fk.models.PLANE_PRESETS))
def test_every_preset_builds_both_models(preset):
    assert fk.models.plane_model("f-nsf", preset=preset).latent_dim == 1
    assert fk.models.plane_model("nsf", preset=preset).latent_dim == 2
