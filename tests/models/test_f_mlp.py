"""F-MLP stacks (A.6 tabular, A.9 anomaly): widths, Table 8 parameter counts, exactness end to end."""

import pytest
import torch

from funnelkit.grid import integrate_density
from funnelkit.layers.mlp_funnel import MLPFunnel
from funnelkit.layers.spline_activation import SplineActivation
from funnelkit.models.f_mlp import Flatten, anomaly_f_mlp, tabular_f_mlp, tabular_widths

from ..conftest import perturb

TABLE_8 = {4: 1_890_324, 16: 1_888_020}  # F-MLP parameters on MNIST, by latent size


def kinds(model):
    return [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize(("data_dim", "latent_dim", "middle"),
                         [(6, 4, 5), (8, 4, 6), (21, 16, 19), (63, 48, 56), (5, 5, 5)])
def test_tabular_stack_follows_a6(data_dim, latent_dim, middle):
    model = tabular_f_mlp(data_dim, latent_dim, preset="quick")
    assert model.data_dim == data_dim and model.latent_dim == latent_dim
    funnels = [layer for layer in model.layers if isinstance(layer, MLPFunnel)]
    widths = [funnels[0].features_in] + [layer.features_out for layer in funnels]
    assert widths == tabular_widths(data_dim, latent_dim)
    assert widths == [data_dim] * 3 + [middle] * 2 + [latent_dim] * 4
    # a spline after every MLP funnel but the last; every funnel in LU form with its own permutation
    assert kinds(model) == ["MLPFunnel", "SplineActivation"] * 7 + ["MLPFunnel"]
    assert all(layer.parameterisation == "lu" for layer in funnels)
    splines = [layer for layer in model.layers if isinstance(layer, SplineActivation)]
    assert all(s.num_bins == 10 and s.tail_bound == 2.0 and not s.shared for s in splines)
    assert model.config == {"builder": "tabular_f_mlp", "name": "f-mlp", "preset": "quick",
                            "data_dim": data_dim, "latent_dim": latent_dim, "overrides": {}}


def test_tabular_density_integrates_to_one_through_the_whole_stack():
    model = perturb(tabular_f_mlp(2, 1, preset="quick", hidden_features=8).double(), scale=0.1)
    assert abs(integrate_density(model.log_prob, bounds=(-9, 9), resolution=400) - 1) < 1e-3


@pytest.mark.parametrize("batch", [1, 5])
def test_right_inverse_through_the_stack_in_float64(batch):
    model = perturb(tabular_f_mlp(8, 3, preset="quick").double(), scale=0.1)
    noise = torch.randn(batch, 3, dtype=torch.float64)
    x, _ = model._transform.inverse(noise)
    assert x.shape == (batch, 8) and x.dtype == torch.float64
    assert torch.allclose(model.encode(x), noise, atol=1e-9)
    samples, log_prob = model.sample_and_log_prob(batch)
    assert torch.allclose(model.log_prob(samples), log_prob, atol=1e-8)
    layers, base = model.contributions(samples)
    assert torch.allclose(base + sum(c.logabsdet + c.log_p_dropped for c in layers), log_prob, atol=1e-8)


@pytest.mark.parametrize("latent_size", [4, 16])
def test_anomaly_parameter_count_is_within_5_percent_of_table_8(latent_size):
    model = anomaly_f_mlp(latent_size)
    count = model.num_parameters()
    print(f"F-MLP latent {latent_size}: {count:,} parameters; Table 8: {TABLE_8[latent_size]:,} "
          f"({100 * (count / TABLE_8[latent_size] - 1):+.2f}%)")
    assert abs(count / TABLE_8[latent_size] - 1) < 0.05
    funnels = [layer for layer in model.layers if isinstance(layer, MLPFunnel)]
    assert [f.features_out for f in funnels] == [512, 256, 128, 64, latent_size]
    assert model.data_dim == 784 and model.latent_dim == latent_size
    assert all(f.decoder.net[0].out_features == 256 for f in funnels)  # decoders 256 x 3
    splines = [layer for layer in model.layers if isinstance(layer, SplineActivation)]
    assert [(s.features, s.num_bins, s.tail_bound) for s in splines] == [(w, 5, 4.0) for w in (512, 256, 128, 64)]
    assert model.config["builder"] == "anomaly_f_mlp" and model.config["name"] == "f-mlp"


def test_anomaly_latent_4_has_more_parameters_than_latent_16_as_in_table_8():
    # Table 8 says 1,890,324 > 1,888,020: p_phi of the last layer models 60 dropped values, not 48.
    assert anomaly_f_mlp(4, preset="quick").num_parameters() > anomaly_f_mlp(16, preset="quick").num_parameters()


def test_anomaly_quick_model_on_images_batch_one_float64():
    model = perturb(anomaly_f_mlp(4, preset="quick").double(), scale=0.02)
    images = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    log_prob = model.log_prob(images)
    assert log_prob.shape == (1,) and torch.isfinite(log_prob).all()
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 28, 28\)"):
        model.log_prob(images.reshape(1, -1))
    noise = torch.randn(2, 4, dtype=torch.float64)
    x, _ = model._transform.inverse(noise)
    assert x.shape == (2, 1, 28, 28)
    assert torch.allclose(model.encode(x), noise, atol=1e-8)


def test_flatten_round_trip():
    flatten = Flatten((1, 28, 28))
    images = torch.rand(3, 1, 28, 28)
    flat, logabsdet = flatten(images)
    assert flat.shape == (3, 784) and (logabsdet == 0).all()
    assert torch.equal(flatten.inverse(flat)[0], images)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 28, 28\)"):
        flatten(torch.rand(3, 784))


def test_bad_inputs_raise_value_error():
    model = tabular_f_mlp(6, 4, preset="quick")
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        model.log_prob(torch.randn(3, 5))
    with pytest.raises(ValueError, match="latent_dim must be at most data_dim=6, got 7"):
        tabular_f_mlp(6, 7)
    with pytest.raises(ValueError, match="unknown preset"):
        tabular_f_mlp(6, 4, preset="huge")
    with pytest.raises(ValueError, match="unknown tabular F-MLP setting"):
        tabular_f_mlp(6, 4, bins=3)
    with pytest.raises(ValueError, match="widths must not increase"):
        anomaly_f_mlp(128, preset="quick")
