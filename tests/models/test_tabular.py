"""The tabular models of Table 1 (A.6, Table 5): shapes, exactness of the coupling funnels,
structure, and the paper's claim that funnels have fewer parameters than their baselines."""

import math

import pytest
import torch
from nflows.flows.base import Flow
from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform

from funnelkit.layers.conditional_elementwise import ConditionalAffine, ConditionalRQSpline
from funnelkit.layers.decoders import GaussianDecoder
from funnelkit.layers.funnel import Funnel
from funnelkit.models.registry import build
from funnelkit.models.tabular import (
    TABULAR_DATASETS,
    TABULAR_MODELS,
    TABULAR_CONFIGS,
    TabularConfig,
    tabular_config,
    tabular_model,
)

from ..conftest import perturb

TABLE_5 = {  # dimension, flow steps, hidden features, dim. reduction, funnel level (Table 5)
    "power": (6, 10, 256, 2, 2),
    "gas": (8, 10, 256, 2, 2),
    "hepmass": (21, 20, 128, 5, 0),
    "miniboone": (43, 10, 32, 10, 4),
    "bsds300": (63, 10, 128, 15, 4),
}
TINY = dict(hidden_features=8, residual_blocks=1, num_bins=4, decoder_hidden_features=6, decoder_flow_steps=2)


def tiny(name, dimension, reduction, decoder="flow", scale=0.1):
    """A perturbed float64 funnel with ``flow_steps=2`` and the funnel at the last step."""
    model = tabular_model(name, "power", preset="quick", dimension=dimension, dim_reduction=reduction,
                          flow_steps=2, funnel_level=1, decoder=decoder, gaussian_hidden_features=8, **TINY)
    return perturb(model.double(), scale=scale).eval()


@pytest.mark.parametrize("dataset", TABULAR_DATASETS)
def test_every_model_builds_with_the_right_shapes(dataset):
    dimension, _, _, reduction, _ = TABLE_5[dataset]
    x = torch.randn(5, dimension)
    for name in TABULAR_MODELS:
        model = tabular_model(name, dataset, preset="quick").eval()
        latent = dimension if name in ("glow", "nsf") else dimension - reduction
        assert (model.data_dim, model.latent_dim) == (dimension, latent), name
        assert model.exact is (name != "vae"), name
        with torch.no_grad():
            log_prob = model.log_prob(x)
            assert log_prob.shape == (5,) and torch.isfinite(log_prob).all(), name
            assert model.sample(3, temperature=0.7).shape == (3, dimension), name
            assert model.encode(x).shape == (5, latent), name
            assert model.log_prob(x[:1]).shape == (1,), name
        assert model.config == {"builder": "tabular", "name": name, "dataset": dataset, "preset": "quick",
                                "overrides": {}}


@pytest.mark.parametrize("name", ["f-nsf", "f-glow"])
def test_a_2d_to_1d_coupling_funnel_integrates_to_one(name):
    model = tiny(name, dimension=2, reduction=1)
    grid = torch.linspace(-12, 12, 601, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        mass = model.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(mass.item() - 1) < 5e-4


def test_a_3d_to_1d_funnel_with_a_coupling_decoder_integrates_to_one():
    model = tiny("f-nsf", dimension=3, reduction=2)
    funnel = [layer for layer in model.layers if isinstance(layer, Funnel)][0]
    couplings = [t for t in funnel.decoder.modules() if isinstance(t, PiecewiseRationalQuadraticCouplingTransform)]
    assert len(couplings) == 2  # p_phi of x_- (2-D) given z is a conditional coupling flow
    grid = torch.linspace(-6, 6, 81, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid, grid)
    with torch.no_grad():
        mass = model.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 3
    assert abs(mass.item() - 1) < 3e-3


CASES = [("f-nsf", 3, 1, "flow"), ("f-glow", 3, 1, "flow"), ("f-nsf", 3, 2, "flow"), ("f-glow", 4, 2, "flow"),
         ("f-nsf", 3, 1, "gaussian")]


@pytest.mark.parametrize("name, dimension, reduction, decoder", CASES)
def test_samples_log_prob_agrees_and_encoding_a_sample_gives_back_z(name, dimension, reduction, decoder):
    model = tiny(name, dimension, reduction, decoder)
    with torch.no_grad():
        samples, log_prob = model.sample_and_log_prob(64, temperature=0.8)
        assert samples.shape == (64, dimension)
        assert torch.allclose(model.log_prob(samples), log_prob, atol=1e-8)
        z = torch.randn(16, dimension - reduction, dtype=torch.float64)
        x, _ = model._transform.inverse(z)  # sample x given z (p_phi draws x_- at every funnel)
        assert torch.allclose(model.encode(x), z, atol=1e-8)  # the right-inverse condition


def test_funnel_structure_follows_table_5_and_a_6():
    nsf, f_nsf = tabular_model("nsf", "power"), tabular_model("f-nsf", "power")
    assert len(nsf.layers) == 10 * 3 + 1  # 10 x [permutation, LU-linear, coupling], then LU-linear
    assert sum(isinstance(layer, PiecewiseRationalQuadraticCouplingTransform) for layer in nsf.layers) == 10
    funnel_index = [i for i, layer in enumerate(f_nsf.layers) if isinstance(layer, Funnel)]
    assert funnel_index == [3 * 2 + 2]  # funnel level 2: the coupling of the third step
    funnel = f_nsf.layers[funnel_index[0]]
    assert (funnel.features_in, funnel.features_out) == (6, 4)
    assert isinstance(funnel.bijection, ConditionalRQSpline) and funnel.bijection.context_features == 2
    assert isinstance(funnel.decoder, Flow)  # p_phi: half the steps, a third of the hidden features
    couplings = [m for m in funnel.decoder.modules() if isinstance(m, PiecewiseRationalQuadraticCouplingTransform)]
    assert len(couplings) == 5 and {c.transform_net.hidden_features for c in couplings} == {256 // 3}
    assert {c.transform_net.context_features for c in couplings} == {4}
    assert f_nsf.layer_widths[-1] == 4

    f_glow = tabular_model("f-glow", "bsds300")
    funnel = [layer for layer in f_glow.layers if isinstance(layer, Funnel)][0]
    assert isinstance(funnel.bijection, ConditionalAffine) and isinstance(funnel.decoder, GaussianDecoder)
    assert f_glow.layers[3 * 4 + 2] is funnel  # funnel level 4
    assert f_glow.layer_widths[3 * 4 + 2 : 3 * 4 + 4] == [63, 48]
    assert sum(isinstance(m, AffineCouplingTransform) for m in f_glow.layers) == 9


def test_paper_preset_holds_table_5_and_quick_keeps_its_structure():
    for dataset, (dimension, steps, hidden, reduction, level) in TABLE_5.items():
        paper, quick = TABULAR_CONFIGS["paper"][dataset], TABULAR_CONFIGS["quick"][dataset]
        assert isinstance(paper, TabularConfig)
        assert (paper.dimension, paper.flow_steps, paper.hidden_features, paper.dim_reduction,
                paper.funnel_level) == (dimension, steps, hidden, reduction, level)
        assert (quick.dimension, quick.dim_reduction, quick.decoder) == (dimension, reduction, paper.decoder)
        assert quick.funnel_level < quick.flow_steps < paper.flow_steps
        assert quick.hidden_features < paper.hidden_features or dataset == "miniboone"
    assert TABULAR_CONFIGS["paper"]["bsds300"].decoder == "gaussian"
    assert TABULAR_CONFIGS["paper"]["miniboone"].lr == 3e-4
    assert TABULAR_CONFIGS["paper"]["gas"].vae_depth == 8


def test_funnels_have_fewer_parameters_than_their_baselines_in_the_paper_preset():
    """A.6: funnel models "have less parameters than their non-funnel baselines"."""
    for dataset in TABULAR_DATASETS:
        counts = {name: tabular_model(name, dataset).num_parameters() for name in ("glow", "f-glow", "nsf", "f-nsf")}
        assert counts["f-glow"] < counts["glow"] and counts["f-nsf"] < counts["nsf"], (dataset, counts)
        assert counts["f-nsf"] > 0.85 * counts["nsf"], (dataset, counts)  # tuned to match, not shrunk


def test_float64_and_rebuilding_from_the_config():
    model = perturb(tabular_model("f-nsf", "gas", preset="quick", hidden_features=16).double()).eval()
    x = torch.randn(4, 8, dtype=torch.float64)
    rebuilt = build(model.config).double().eval()
    assert rebuilt.config == model.config and rebuilt.config["overrides"] == {"hidden_features": 16}
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt.log_prob(x), model.log_prob(x), atol=1e-12)
        assert model.log_prob(x).dtype == torch.float64


def test_permutations_are_fixed_by_the_seed():
    def permutations(model):
        return [b for name, b in model.named_buffers() if name.endswith("_permutation")]

    first, second = tabular_model("nsf", "hepmass", preset="quick"), tabular_model("nsf", "hepmass", preset="quick")
    other = tabular_model("nsf", "hepmass", preset="quick", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(permutations(first), permutations(second)))
    assert not all(torch.equal(a, b) for a, b in zip(permutations(first), permutations(other)))


def test_dropout_acts_in_train_mode_only():
    model = tabular_model("f-nsf", "gas", preset="quick", dropout=0.5)
    x = torch.randn(8, 8)
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model.log_prob(x), model.log_prob(x))
        model.eval()
        assert torch.equal(model.log_prob(x), model.log_prob(x))


def test_bad_choices_name_what_was_expected():
    with pytest.raises(ValueError, match="'glow', 'f-glow', 'nsf', 'f-nsf', 'vae', 'f-mlp'"):
        tabular_model("maf", "power")
    with pytest.raises(ValueError, match="'power', 'gas', 'hepmass', 'miniboone', 'bsds300'"):
        tabular_model("nsf", "cifar10")
    with pytest.raises(ValueError, match="'paper', 'quick'"):
        tabular_model("nsf", "power", preset="huge")
    with pytest.raises(ValueError, match="unknown tabular model setting"):
        tabular_model("nsf", "power", widht=3)
    with pytest.raises(ValueError, match=r"dim_reduction must be in \[1, dimension=6\)"):
        tabular_config("power", dim_reduction=6)
    with pytest.raises(ValueError, match=r"funnel_level must be in \[0, flow_steps=4\)"):
        tabular_config("power", preset="quick", funnel_level=4)
    with pytest.raises(ValueError, match="coupling layer needs at least 2 features"):
        tabular_model("f-nsf", "power", preset="quick", dimension=3, dim_reduction=2, funnel_level=0)
    with pytest.raises(ValueError, match="decoder"):
        tabular_config("gas", decoder="mixture")
    model = tabular_model("glow", "power", preset="quick")
    with pytest.raises(ValueError, match=r"shape \(batch, 6\)"):
        model.log_prob(torch.randn(3, 5))


def test_vae_and_f_mlp_use_the_same_compression():
    for name in ("vae", "f-mlp"):
        model = tabular_model(name, "miniboone", preset="quick")
        assert model.latent_dim == 43 - 10 and model.config["name"] == name
    vae = tabular_model("vae", "gas")
    linears = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 8 + 1 and linears[0].out_features == 64  # Table 5: GAS VAE 64 wide, 8 deep
    assert math.isclose(TABULAR_CONFIGS["paper"]["gas"].vae_lr, 5e-3)
