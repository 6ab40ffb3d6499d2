"""Temperature modes: ``temper="base"`` is the paper's tempering bit for bit, ``"all"`` scales the
decoders' noise by T too, ``"mean"`` gives the decoders' noise-free means, and log p stays exact."""

import threading

import pytest
import torch

import funnelkit as fk
from funnelkit.layers import ConvFunnel2d, Funnel, GaussianDecoder, flow_decoder, rq_autoregressive
from funnelkit.layers.decoder_noise import decoder_noise_scale, scaled_decoder_noise
from funnelkit.models.f_mlp import Flatten
from funnelkit.models.funnel_flow import FunnelFlow
from funnelkit.models.tempering import TEMPER_MODES
from funnelkit.models.vae import MLP, VAE, GaussianMLPDecoder


def _randomise(module, seed, std=0.3):
    """Non-zero weights everywhere (decoders start at N(0, I) with zero last layers)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(std * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return module


@pytest.fixture(scope="module")
def funnel_model():
    """(1, 4, 4) images -> 4 -> 3 -> 2 in float64, with all three decoders of the kit: the tile
    Gaussian of the conv funnel, a GaussianDecoder and a flow decoder."""
    torch.manual_seed(0)
    layers = [
        ConvFunnel2d(1, 4, 4, hidden_features=8, num_hidden_layers=1),
        Flatten((1, 2, 2)),
        Funnel(4, rq_autoregressive(3, context_features=1, hidden_features=8, num_bins=4),
               GaussianDecoder(1, 3, hidden_features=8, num_hidden_layers=1)),
        Funnel(3, rq_autoregressive(2, context_features=1, hidden_features=8, num_bins=4),
               flow_decoder(1, 2, num_layers=1, hidden_features=8, num_bins=4)),
    ]
    model = FunnelFlow([layer.double() for layer in layers], data_shape=(1, 4, 4))
    return _randomise(model, 1).eval()


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    model = VAE(MLP(6, 4, 8, 1), GaussianMLPDecoder(2, 6, 8, 1, log_std="scalar"), 6, 2).double()
    return _randomise(model, 2).eval()


def _seeded(seed, draw):
    torch.manual_seed(seed)
    with torch.no_grad():
        return draw()


def test_base_is_the_paper_tempering_bit_for_bit(funnel_model):
    """The paper's code, written out: z = T eps pushed through the layers' inverses, decoders at T = 1."""
    for temperature in (0.5, 1.0):
        paper = _seeded(3, lambda: funnel_model._transform.inverse(
            funnel_model._distribution.sample(5) * temperature)[0])
        ours = _seeded(3, lambda: funnel_model.sample(5, temperature=temperature, temper="base"))
        default = _seeded(3, lambda: funnel_model.sample(5, temperature=temperature))
        assert torch.equal(ours, paper) and torch.equal(default, paper)


def test_all_at_temperature_one_is_base_at_temperature_one(funnel_model, vae):
    for model in (funnel_model, vae):
        base = _seeded(4, lambda: model.sample(6, temperature=1.0, temper="base"))
        every = _seeded(4, lambda: model.sample(6, temperature=1.0, temper="all"))
        assert torch.equal(base, every)
    assert not torch.equal(_seeded(4, lambda: funnel_model.sample(6, temperature=0.5, temper="base")),
                           _seeded(4, lambda: funnel_model.sample(6, temperature=0.5, temper="all")))


def test_all_at_temperature_zero_is_the_decoder_means_and_deterministic(funnel_model, vae):
    for model in (funnel_model, vae):
        first = _seeded(5, lambda: model.sample(4, temperature=0.0, temper="all"))
        other_seed = _seeded(6, lambda: model.sample(4, temperature=0.0, temper="all"))
        means = _seeded(7, lambda: model.sample(4, temperature=0.0, temper="mean"))
        assert torch.equal(first, other_seed) and torch.equal(first, means)
        assert torch.equal(first, first[:1].expand_as(first))  # one picture: nothing random is left
    # the VAE's: its decoder's mean at z = 0, in the data's units
    mean, _ = vae.decoder(torch.zeros(1, 2, dtype=torch.float64))
    assert torch.allclose(_seeded(0, lambda: vae.sample(1, temperature=0.0, temper="all")),
                          (mean - vae.shift) / vae.scale)


def test_mean_is_deterministic_given_the_base_noise(funnel_model):
    noise = _seeded(8, lambda: funnel_model._distribution.sample(5) * 0.7)
    with scaled_decoder_noise(0.0):
        first = _seeded(9, lambda: funnel_model._transform.inverse(noise)[0])
        second = _seeded(10, lambda: funnel_model._transform.inverse(noise)[0])
    assert torch.equal(first, second)
    assert torch.equal(_seeded(8, lambda: funnel_model.sample(5, temperature=0.7, temper="mean")), first)
    noisy = _seeded(9, lambda: funnel_model._transform.inverse(noise)[0])
    assert not torch.allclose(noisy, first)  # outside the block the decoders draw again


def test_the_conv_funnels_decoder_mean_is_its_tile_gaussians_mean(funnel_model):
    layer = funnel_model.layers[0]
    z = _seeded(11, lambda: torch.randn(3, 1, 2, 2, dtype=torch.float64))
    with torch.no_grad(), scaled_decoder_noise(0.0):
        x, _ = layer.inverse(z)
        mean, _ = layer.decoder.mean_and_log_std(z)
        expected = layer.inverse_given_dropped(z, mean)
    assert torch.allclose(x, expected, atol=1e-12)


@pytest.mark.parametrize("scale", [0.0, 0.3, 2.0])
def test_each_decoder_scales_its_noise(funnel_model, scale):
    """Same seed, decoder noise at 1 and at s: the standardised draw of the second is s times the first's."""
    tile = funnel_model.layers[0].decoder
    z = _seeded(12, lambda: torch.randn(2, 1, 2, 2, dtype=torch.float64))
    with torch.no_grad():
        mean, log_std = tile.mean_and_log_std(z)
        one = _seeded(13, lambda: tile.sample_and_log_prob(z)[0])
        with scaled_decoder_noise(scale):
            scaled = _seeded(13, lambda: tile.sample_and_log_prob(z)[0])
    assert torch.allclose((scaled - mean) / log_std.exp(), scale * (one - mean) / log_std.exp(), atol=1e-10)

    gaussian = funnel_model.layers[2].decoder
    context = torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = gaussian.mean_and_log_std(context)
        one = _seeded(14, lambda: gaussian.sample(1, context=context)[:, 0])
        with scaled_decoder_noise(scale):
            scaled = _seeded(14, lambda: gaussian.sample(1, context=context)[:, 0])
    assert torch.allclose(scaled - mean, scale * (one - mean), atol=1e-10)

    flow = funnel_model.layers[3].decoder
    context = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        one = _seeded(15, lambda: flow.sample(1, context=context)[:, 0])
        with scaled_decoder_noise(scale):
            scaled = _seeded(15, lambda: flow.sample(1, context=context)[:, 0])
        eps_one = flow.transform_to_noise(one, context)
        eps_scaled = flow.transform_to_noise(scaled, context)
    assert torch.allclose(eps_scaled, scale * eps_one, atol=1e-8)


@pytest.mark.parametrize("temper", TEMPER_MODES)
@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0, 1.3])
def test_sample_and_log_prob_is_the_exact_log_density_of_the_samples(funnel_model, temper, temperature):
    samples, log_p = _seeded(16, lambda: funnel_model.sample_and_log_prob(
        32, temperature=temperature, temper=temper))
    with torch.no_grad():
        assert torch.allclose(log_p, funnel_model.log_prob(samples), atol=1e-9)
    assert torch.equal(samples, _seeded(16, lambda: funnel_model.sample(32, temperature=temperature, temper=temper)))


@pytest.mark.parametrize("temper", TEMPER_MODES)
def test_a_shipped_size_image_funnel_keeps_log_p_exact(temper):
    torch.manual_seed(0)
    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick").eval()
    decoders = [layer.decoder for layer in model.layers if isinstance(layer, ConvFunnel2d)]
    assert len(decoders) == 3
    for i, decoder in enumerate(decoders):  # trained-looking decoders: not N(0, I) everywhere
        _randomise(decoder, 3 + i, std=0.05)
    samples, log_p = _seeded(17, lambda: model.sample_and_log_prob(4, temperature=0.5, temper=temper))
    with torch.no_grad():
        assert torch.allclose(log_p, model.log_prob(samples), rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize("temper", TEMPER_MODES)
def test_the_vaes_sample_and_log_prob_is_its_elbo_of_the_samples(vae, temper):
    samples, bound = _seeded(18, lambda: vae.sample_and_log_prob(16, temperature=0.5, temper=temper))

    def sample_then_elbo():
        x = vae.sample(16, temperature=0.5, temper=temper)
        return x, vae.log_prob(x)

    again, elbo = _seeded(18, sample_then_elbo)
    assert torch.equal(samples, again) and torch.equal(bound, elbo)


def test_the_vaes_all_scales_its_decoder_noise(vae):
    """x' = mu(z) + s sigma eps with z the same draw: the 'all' draw minus the mean is T times the 'base' one's."""
    def parts(temper):
        torch.manual_seed(19)
        z = torch.randn(8, 2, dtype=torch.float64) * 0.4
        torch.manual_seed(19)
        with torch.no_grad():
            x = vae.sample(8, temperature=0.4, temper=temper)
            mean, _ = vae.decoder(z)
        return x * vae.scale + vae.shift - mean

    assert torch.allclose(parts("all"), 0.4 * parts("base"), atol=1e-12)
    assert torch.allclose(parts("mean"), torch.zeros_like(parts("mean")), atol=1e-12)


@pytest.mark.parametrize("bad", ["hot", "Base", None, 1])
def test_an_unknown_temper_is_refused_naming_the_choices(funnel_model, vae, bad):
    for call in (lambda: funnel_model.sample(2, temper=bad), lambda: funnel_model.sample_and_log_prob(2, temper=bad),
                 lambda: vae.sample(2, temper=bad), lambda: vae.sample_and_log_prob(2, temper=bad)):
        with pytest.raises(ValueError, match="unknown temper .*expected one of 'base', 'all', 'mean'"):
            call()


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "hot", True])
def test_a_temperature_outside_the_allowed_range_is_refused(funnel_model, vae, bad):
    for temper in TEMPER_MODES:
        for call in (lambda: funnel_model.sample(2, temperature=bad, temper=temper),
                     lambda: funnel_model.sample_and_log_prob(2, temperature=bad, temper=temper),
                     lambda: vae.sample(2, temperature=bad, temper=temper)):
            with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0"):
                call()


def test_the_decoder_noise_scale_is_restored_and_per_thread(funnel_model):
    assert decoder_noise_scale() == 1.0
    funnel_model.sample(2, temperature=0.5, temper="mean")
    assert decoder_noise_scale() == 1.0
    with pytest.raises(ValueError, match="decoder noise scale"):
        with scaled_decoder_noise(-1.0):
            pass
    seen = {}
    with scaled_decoder_noise(0.25):
        worker = threading.Thread(target=lambda: seen.setdefault("other thread", decoder_noise_scale()))
        worker.start()
        worker.join()
        seen["this thread"] = decoder_noise_scale()
        with pytest.raises(RuntimeError):
            with scaled_decoder_noise(0.5):
                raise RuntimeError("a failed draw")
        seen["after the error"] = decoder_noise_scale()
    assert seen == {"other thread": 1.0, "this thread": 0.25, "after the error": 0.25}
    assert decoder_noise_scale() == 1.0
