"""The anomaly-detection models of A.9: Table 8's sizes, the exact odd-size F-NSF, the interface."""

import pytest
import torch

from funnelkit.layers.conv_funnel_2d import ConvFunnel2d
from funnelkit.models.anomaly import ANOMALY_MODELS, anomaly_model, f_nsf_levels
from funnelkit.models.image_steps import CheckerboardRQCoupling, Preprocess
from funnelkit.models.registry import build

from ..conftest import perturb

TABLE_8 = {("vae", 4): 1_861_401, ("vae", 16): 1_879_857, ("f-nsf", 4): 7_286_164, ("f-nsf", 16): 5_464_623,
           ("f-mlp", 4): 1_890_324, ("f-mlp", 16): 1_888_020, ("nsf", 16): 4_724_430}


@pytest.mark.parametrize("name, latent_size", sorted(TABLE_8))
def test_paper_parameter_counts_are_within_five_percent_of_table_8(name, latent_size):
    count = anomaly_model(name, latent_size).num_parameters()
    assert abs(count / TABLE_8[name, latent_size] - 1) < 0.05, count
    if name in ("vae", "nsf"):  # these two are the authors' architectures exactly
        assert count == TABLE_8[name, latent_size]


@pytest.mark.parametrize("name", ANOMALY_MODELS)
@pytest.mark.parametrize("latent_size", [4, 16])
def test_quick_models_build_and_keep_the_interface(name, latent_size):
    model = anomaly_model(name, latent_size, preset="quick")
    x = torch.rand(2, 1, 28, 28) * 256
    log_p = model.log_prob(x)
    assert log_p.shape == (2,) and torch.isfinite(log_p).all()
    model.eval()
    with torch.no_grad():
        assert model.sample(3).shape == (3, 1, 28, 28)
        assert model.encode(x[:1]).shape == (1, model.latent_dim)  # batch 1 works
    assert model.latent_dim == (784 if name == "nsf" else latent_size)
    assert model.exact == (name != "vae")
    assert model.config["builder"] == "anomaly" and build(model.config).num_parameters() == model.num_parameters()


def test_f_nsf_funnels_halve_exactly_through_odd_sizes():
    model = anomaly_model("f-nsf", 16, preset="quick")
    funnels = [layer for layer in model.layers if isinstance(layer, ConvFunnel2d)]
    assert [(f.input_shape, f.output_shape) for f in funnels] == [
        ((1, 28, 28), (1, 14, 14)), ((1, 14, 14), (1, 7, 7)), ((1, 7, 7), (1, 4, 4))]
    boards = [m for m in model.modules() if isinstance(m, CheckerboardRQCoupling)]
    assert boards and all(b.input_shape == (1, 7, 7) for b in boards)  # no padding to 8 x 8
    assert isinstance(model.layers[0], Preprocess) and model.layers[0].bits == 8
    deeper = anomaly_model("f-nsf", 4, preset="quick")
    assert [f.output_shape for f in deeper.layers if isinstance(f, ConvFunnel2d)][-1] == (1, 2, 2)
    assert (f_nsf_levels((1, 28, 28), 16), f_nsf_levels((1, 28, 28), 4)) == (3, 4)


@pytest.mark.parametrize("name, latent_size", [("f-nsf", 16), ("f-nsf", 4), ("nsf", 16)])
def test_samples_and_their_log_prob_agree_and_encoding_recovers_the_noise(name, latent_size):
    model = perturb(anomaly_model(name, latent_size, preset="quick").double(), scale=0.05).eval()
    with torch.no_grad():
        x, log_p = model.sample_and_log_prob(3)
        assert torch.allclose(model.log_prob(x), log_p, atol=1e-8)
        noise = torch.randn(3, *model.latent_shape, dtype=torch.float64)
        x, _ = model._transform.inverse(noise)
        assert torch.allclose(model.encode(x), noise.reshape(3, -1), atol=1e-8)  # right-inverse condition


def test_quick_models_take_a_training_step():
    for name in ANOMALY_MODELS:
        model = anomaly_model(name, 16, preset="quick")
        loss = -model.log_prob(torch.rand(8, 1, 28, 28) * 256).mean()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name


def test_bad_names_shapes_and_latent_sizes_are_refused():
    with pytest.raises(ValueError, match="expected one of 'vae', 'f-nsf', 'f-mlp', 'nsf'"):
        anomaly_model("glow")
    with pytest.raises(ValueError, match="expected one of 'paper', 'quick'"):
        anomaly_model("nsf", preset="huge")
    with pytest.raises(ValueError, match=r"latent size must be one of \[196, 49, 16, 4, 1\], got 8"):
        anomaly_model("f-nsf", 8, preset="quick")
    with pytest.raises(ValueError, match="unknown anomaly model setting"):
        anomaly_model("nsf", preset="quick", hidden=3)
    for name in ANOMALY_MODELS:
        model = anomaly_model(name, 4, preset="quick")
        with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
            model.log_prob(torch.rand(2, 3, 28, 28))
