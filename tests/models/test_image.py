"""The image models of Table 2 / A.8 / Table 7: structure, latent sizes, exactness, the interface."""

import math

import pytest
import torch
from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform

from funnelkit.layers.conv_funnel_2d import ConvFunnel2d
from funnelkit.models.anomaly import anomaly_model
from funnelkit.models.image import IMAGE_DATASETS, IMAGE_MODELS, IMAGE_SHAPES, image_config, image_model
from funnelkit.models.image_steps import MultiscaleLevels, Preprocess
from funnelkit.models.registry import build
from funnelkit.models.resnet_vae import ResNetDecoder

from ..conftest import perturb


def couplings(model):
    return [m for m in model.modules() if isinstance(m, PiecewiseRationalQuadraticCouplingTransform)]


@pytest.mark.parametrize("dataset", IMAGE_DATASETS)
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_quick_models_build_and_keep_the_interface(name, dataset):
    bits = 5 if dataset == "cifar10" else 8
    model = image_model(name, dataset, bits, preset="quick")
    shape = IMAGE_SHAPES[dataset]
    x = torch.rand(2, *shape) * 2**bits
    log_p = model.log_prob(x)
    assert log_p.shape == (2,) and torch.isfinite(log_p).all()
    model.eval()
    with torch.no_grad():
        assert model.sample(3).shape == (3, *shape)
        assert model.encode(x[:1]).shape == (1, model.latent_dim)  # batch 1 works
    assert model.exact == (name != "vae")
    expected_latent = {"nsf": math.prod(shape), "f-nsf": math.prod(shape) // 16, "vae": math.prod(shape) // 16}
    if dataset in ("mnist", "fashion-mnist"):
        expected_latent.update({"f-nsf": 16, "vae": 16})
    assert model.latent_dim == expected_latent[name]
    assert model.config == {"builder": "image", "name": name, "dataset": dataset, "bits": bits,
                            "preset": "quick", "overrides": {}}
    assert build(model.config).num_parameters() == model.num_parameters()


@pytest.mark.parametrize("dataset, latent", [("cifar10", 192), ("imagenet64", 768)])
def test_paper_f_nsf_reaches_a_sixteenth_of_d_with_two_funnels(dataset, latent):
    model = image_model("f-nsf", dataset, 5)
    assert model.latent_dim == latent == math.prod(IMAGE_SHAPES[dataset]) // 16  # Table 2
    funnels = [layer for layer in model.layers if isinstance(layer, ConvFunnel2d)]
    assert len(funnels) == 2
    # The first sits on the raw RGB image after one block: A.8's 27 inputs and 9 dropped values per tile.
    first, second = (f.decoder.gaussian.net for f in funnels)
    assert funnels[0].input_shape[0] == 3 and (first[0].in_features, first[-1].out_features) == (27, 2 * 9)
    assert funnels[1].input_shape[0] == 12 and second[0].in_features == 108
    assert first[0].out_features == 128 and sum(isinstance(m, torch.nn.Linear) for m in first) == 4  # MLP 3 x 128
    nsf = image_model("nsf", dataset, 5)
    assert len(couplings(nsf)) == {"cifar10": 21, "imagenet64": 28}[dataset]  # A.8: 7 steps per level
    assert len(couplings(model)) == len(couplings(nsf)) + 1  # plus the first block
    assert nsf.latent_dim == math.prod(IMAGE_SHAPES[dataset])


def test_table_7_settings_reach_the_couplings():
    for (dataset, bits), (hidden, bins, dropout) in {("cifar10", 5): (64, 2, 0.2), ("cifar10", 8): (96, 4, 0.2),
                                                      ("imagenet64", 5): (96, 8, 0.1),
                                                      ("imagenet64", 8): (96, 8, 0.0)}.items():
        config = image_config(dataset, bits)
        assert (config.hidden_channels, config.num_bins, config.dropout) == (hidden, bins, dropout)
        imagenet = dataset == "imagenet64"
        assert config.levels == (4 if imagenet else 3) and config.multi_scale == imagenet
    model = image_model("nsf", "cifar10", 8)
    coupling = couplings(model)[0]
    net = coupling.transform_net
    assert coupling.num_bins == 4 and coupling.tail_bound == 3.0 and coupling.tails == "linear"
    assert net.hidden_channels == 96 and len(net.blocks) == 3 and net.blocks[0].use_batch_norm
    assert net.blocks[0].dropout.p == 0.2 and coupling.min_derivative == 1e-3
    assert isinstance(image_model("nsf", "imagenet64", 8, preset="quick").layers[-1], MultiscaleLevels)
    # The authors' builds (reference note 4.3): NSF 5.33M (CIFAR-10 5-bit), 11.84M (8-bit), 15.6M (ImageNet64).
    assert abs(model.num_parameters() / 11.84e6 - 1) < 0.01
    assert abs(image_model("nsf", "cifar10", 5).num_parameters() / 5.33e6 - 1) < 0.01


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet64"])
def test_f_nsf_samples_are_exact_and_encode_back_to_their_noise(dataset):
    model = perturb(image_model("f-nsf", dataset, 5, preset="quick").double(), scale=0.05).eval()
    with torch.no_grad():
        x, log_p = model.sample_and_log_prob(2)
        assert torch.allclose(model.log_prob(x), log_p, atol=1e-7)
        noise = torch.randn(2, *model.latent_shape, dtype=torch.float64)
        x, _ = model._transform.inverse(noise)
        assert torch.allclose(model.encode(x), noise.reshape(2, -1), atol=1e-7)  # right-inverse condition
    assert isinstance(model.layers[0], Preprocess) and model.layers[0].bits == 5


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet64"])
def test_resnet_vae_works_at_32_and_64_pixels(dataset):
    model = image_model("vae", dataset, 8, preset="quick").eval()
    shape = IMAGE_SHAPES[dataset]
    decoder = model.decoder
    assert isinstance(decoder, ResNetDecoder)
    mean, log_std = decoder(torch.randn(2, model.latent_dim))
    assert mean.shape == (2, *shape) and mean.min() >= 0 and mean.max() <= 1  # a sigmoid
    assert log_std.shape == (1, 3, 1, 1) and decoder.log_std.requires_grad  # one per channel
    assert model.scale == 2.0**-8 and model.shift == 0.0  # x' in [0, 1), the sigmoid's range
    paper = image_model("vae", dataset, 8)
    encoder_stages = [m for m in paper.encoder.stages]
    assert len(encoder_stages) == 8 and paper.encoder.linear.out_features == 2 * paper.latent_dim  # ResNet18


def test_mnist_models_are_the_anomaly_models():
    for name, anomaly_name in [("nsf", "nsf"), ("f-nsf", "f-nsf"), ("vae", "vae")]:
        image = image_model(name, "fashion-mnist", 8, preset="quick")
        anomaly = anomaly_model(anomaly_name, 16, preset="quick")
        assert image.num_parameters() == anomaly.num_parameters() and image.latent_dim == anomaly.latent_dim
    assert image_model("f-nsf", "mnist", 8, preset="quick", latent_dim=4).latent_dim == 4


def test_bad_names_and_shapes_are_refused():
    with pytest.raises(ValueError, match="expected one of 'nsf', 'f-nsf', 'vae'"):
        image_model("glow", "cifar10")
    with pytest.raises(ValueError, match="expected one of 'cifar10', 'imagenet64', 'mnist', 'fashion-mnist'"):
        image_model("nsf", "svhn")
    with pytest.raises(ValueError, match="unknown bits 6; expected one of 5, 8"):
        image_model("nsf", "cifar10", 6)
    with pytest.raises(ValueError, match="unknown image model setting"):
        image_model("nsf", "cifar10", 5, preset="quick", hidden=3)
    for name in IMAGE_MODELS:
        model = image_model(name, "cifar10", 5, preset="quick")
        with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\)"):
            model.log_prob(torch.rand(2, 1, 32, 32))  # a wrong channel count
        with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\)"):
            model.log_prob(torch.rand(2, 3, 28, 28))
