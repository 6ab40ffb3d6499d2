"""FunnelFlow: the density is normalised, sampling agrees with scoring, shapes are checked."""

import pytest
import torch

import funnelkit as fk
from funnelkit.grid import integrate_density

from ..conftest import perturb, small_plane_model

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("name", ["f-nsf", "nsf"])
def test_untrained_density_integrates_to_one(name):
    model = small_plane_model(name)  # nflows initialises the spline networks at random
    assert abs(integrate_density(model.log_prob, bounds=(-7, 7), resolution=500) - 1) < 1e-3


def test_trained_funnel_density_integrates_to_one():
    model = small_plane_model("f-nsf")
    config = fk.TrainConfig(steps=150, batch_size=256, lr=3e-3)
    trainer = fk.Trainer(model, lambda n, g: fk.data.four_circles(n, generator=g), config)
    trainer.fit(progress=False)
    assert trainer.history["loss"][-1] < trainer.history["loss"][0] - 0.5  # it learned something
    model.eval()
    assert abs(integrate_density(model.log_prob, bounds=(-6, 6), resolution=500) - 1) < 1e-3


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sample_and_log_prob_agrees_with_log_prob(temperature):
    model = perturb(small_plane_model("f-nsf"), scale=0.1)
    samples, log_prob = model.sample_and_log_prob(200, temperature=temperature)
    assert samples.shape == (200, 2) and log_prob.shape == (200,)
    assert torch.allclose(log_prob, model.log_prob(samples), atol=1e-9)


def test_contributions_add_up_to_log_prob():
    model = perturb(small_plane_model("f-nsf"), scale=0.1)
    x = fk.data.four_circles(50, dtype=torch.float64)
    layers, base = model.contributions(x)
    assert [c.features_out for c in layers][-1] == 1 and layers[-1].name == "Funnel"
    assert all((c.log_p_dropped == 0).all() for c in layers[:-1])
    total = base + sum(c.logabsdet + c.log_p_dropped for c in layers)
    assert torch.allclose(total, model.log_prob(x), atol=1e-10)
    assert torch.allclose(layers[-1].outputs, model.encode(x))


def test_temperature_scales_the_base_noise():
    model = small_plane_model("f-nsf")
    torch.manual_seed(5)
    cold = model.sample(4, temperature=0.5)
    torch.manual_seed(5)
    noise = model._distribution.sample(4) * 0.5
    # Same base noise, then the funnel samples x_- with the same draws: identical samples.
    torch.manual_seed(5)
    model._distribution.sample(4)
    expected, _ = model._transform.inverse(noise)
    assert torch.allclose(cold, expected)
    assert model.encode(cold).abs().max() <= 0.5 * noise.abs().max() / 0.5 + 1e-9


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_devices_and_batch_size_one(dtype, device):
    model = small_plane_model("f-nsf", dtype=dtype).to(device)
    x = fk.data.four_circles(1, dtype=dtype).to(device)
    assert model.log_prob(x).shape == (1,) and model.log_prob(x).dtype == dtype
    assert model.encode(x).shape == (1, 1)
    sample = model.sample(1)
    assert sample.shape == (1, 2) and sample.dtype == dtype and sample.device.type == device


def test_latent_and_data_dims():
    assert fk.models.plane_model("f-nsf", preset="quick").latent_dim == 1
    assert fk.models.plane_model("nsf", preset="quick").latent_dim == 2
    assert fk.models.plane_model("f-nsf", preset="quick").data_dim == 2


def test_context_is_passed_through_a_conditional_funnel_flow():
    bijection = fk.layers.rq_autoregressive(1, context_features=2, hidden_features=8, num_bins=4)
    decoder = fk.layers.GaussianDecoder(1, 2, hidden_features=8)
    model = fk.models.FunnelFlow([fk.layers.Funnel(2, bijection, decoder, context_features=1)], 2, context_features=1)
    model = perturb(model.double())
    context = torch.randn(3, 1, dtype=torch.float64)
    samples, log_prob = model.sample_and_log_prob(4, context=context)
    assert samples.shape == (3, 4, 2) and log_prob.shape == (3, 4)
    repeated = context.repeat_interleave(4, dim=0)
    assert torch.allclose(log_prob.reshape(-1), model.log_prob(samples.reshape(-1, 2), context=repeated), atol=1e-9)
    with pytest.raises(ValueError, match="needs a context"):
        model.sample(2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(4, 3), r"shape \(batch, 2\)"),
        (torch.zeros(4), r"shape \(batch, 2\)"),
        (torch.zeros(0, 2), r"batch >= 1"),
        (torch.tensor([[0.0, float("nan")]]), "rows \\[0\\] hold NaN"),
        (torch.zeros(4, 2, dtype=torch.float64), "dtype torch.float32"),
        (torch.zeros(4, 2, dtype=torch.long), "dtype torch.float32"),
        ([[0.0, 0.0]], "torch.Tensor"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(bad, message):
    model = fk.models.plane_model("f-nsf", preset="quick")
    with pytest.raises(ValueError, match=message):
        model.log_prob(bad)
    with pytest.raises(ValueError, match=message):
        model.encode(bad)


def test_bad_names_and_sampling_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown plane model 'glow'; expected one of 'f-nsf', 'nsf'"):
        fk.models.plane_model("glow")
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        fk.models.plane_model("nsf", preset="fast")
    with pytest.raises(ValueError, match="unknown plane model setting"):
        fk.models.plane_model("nsf", preset="quick", hiden_features=3)
    model = fk.models.plane_model("nsf", preset="quick")
    for t in (-1.0, float("nan"), "hot"):  # T = 0 is allowed: z = 0 (funnelkit.models.tempering)
        with pytest.raises(ValueError, match="temperature"):
            model.sample(3, temperature=t)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)


def test_a_layer_of_the_wrong_width_is_named():
    funnel = fk.layers.Funnel(3, fk.layers.rq_autoregressive(2, context_features=1, hidden_features=4, num_bins=3),
                              fk.layers.GaussianDecoder(1, 2, hidden_features=4))
    with pytest.raises(ValueError, match="layer 0 \\(Funnel\\) expects inputs of shape 3, but the layers before it give 2"):
        fk.models.FunnelFlow([funnel], data_shape=2)


def test_a_flow_without_parameters_knows_its_dtype():
    # The multi-scale split: drop x_1 with a fixed N(0, 1), keep x_2 as it is.
    model = fk.models.FunnelFlow([fk.layers.Slice(2, fk._compat.StandardNormal([1]))], data_shape=2).double()
    assert list(model.parameters()) == [] and model.dtype == torch.float64
    x = torch.randn(5, 2, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(1)
    assert torch.allclose(model.log_prob(x), expected)


@pytest.mark.parametrize("default, layer_dtype", [(torch.float64, torch.float32), (torch.float32, torch.float64)])
def test_layers_of_another_dtype_than_the_default_build_a_flow(default, layer_dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        layer = fk.layers.ConvFunnel2d(1, 4, 4, hidden_features=8, num_hidden_layers=1).to(layer_dtype)
        model = fk.models.FunnelFlow([layer], data_shape=(1, 4, 4))
    finally:
        torch.set_default_dtype(previous)
    assert model.dtype == layer_dtype and model.latent_shape == (1, 2, 2)
    x = torch.rand(3, 1, 4, 4, dtype=layer_dtype)
    assert model.log_prob(x).dtype == layer_dtype


def test_image_shaped_data_keeps_its_shape_and_encode_flattens_the_latent():
    from nflows.transforms.reshape import SqueezeTransform

    model = fk.models.FunnelFlow([SqueezeTransform()], data_shape=(1, 4, 4)).double()
    assert model.data_shape == (1, 4, 4) and model.latent_shape == (4, 2, 2)
    assert model.data_dim == model.latent_dim == 16
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    assert model.encode(x).shape == (3, 16)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).flatten(1).sum(1)  # a squeeze is a permutation
    assert torch.allclose(model.log_prob(x), expected, atol=1e-12)
    assert model.sample(5, temperature=0.5).shape == (5, 1, 4, 4)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 4, 4\)"):
        model.log_prob(torch.randn(3, 16, dtype=torch.float64))


def test_a_model_is_exact_unless_a_layer_says_it_is_a_bound():
    model = small_plane_model()
    assert model.exact
    model.layers[-1].exact = False
    assert not model.exact
