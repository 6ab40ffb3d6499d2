"""FID and IS: the formulas on cases with known answers, and the torch-fidelity path with a
RANDOMLY INITIALISED Inception network (never real weights, so never a real FID)."""

import numpy as np
import pytest
import torch

from funnelkit import fidelity


def _random_spd(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# --- Frechet distance --------------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero_and_a_shift_adds_its_squared_length():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    assert fidelity.frechet_distance_of_features(features, features) == pytest.approx(0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    # same covariance, so only the mean term is left: ||shift||^2 = 14.25
    assert fidelity.frechet_distance_of_features(features, features + shift) == pytest.approx(14.25, abs=1e-8)


def test_fid_closed_forms():
    # one dimension: (m1 - m2)^2 + (s1 - s2)^2
    assert fidelity.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # diagonal covariances: ||dmu||^2 + sum (sqrt a - sqrt b)^2
    a, b = np.array([1.0, 2.0, 5.0]), np.array([3.0, 0.5, 5.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 1.0, 0.0])
    expected = 2 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fidelity.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_fid_matches_an_independent_trace_of_sqrt_of_the_product():
    d = 6
    s1, s2 = _random_spd(d, 1), _random_spd(d, 2)
    mu1, mu2 = np.arange(d, dtype=float), np.ones(d)
    # Tr((s1 s2)^(1/2)) from the eigenvalues of the (non-symmetric) product, all positive here
    trace_sqrt = np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert fidelity.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert fidelity.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    theirs = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    assert fidelity.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-9)


def test_fid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        fidelity.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        fidelity.feature_statistics(np.zeros((1, 4)))


# --- Inception score ---------------------------------------------------------------------

def test_inception_score_known_cases():
    k = 7
    uniform = torch.full((21, k), 1 / k)
    assert fidelity.inception_score(uniform, splits=3) == pytest.approx((1.0, 0.0))
    one_hot = torch.eye(k).repeat(3, 1)  # every class used equally in each split of 7 rows
    assert fidelity.inception_score(one_hot, splits=3) == pytest.approx((k, 0.0))
    assert fidelity.inception_score(logits=torch.zeros(10, 4), splits=1)[0] == pytest.approx(1.0)


def test_inception_score_matches_torch_fidelity_without_shuffling():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(30, 11, generator=torch.Generator().manual_seed(0)) * 3
    theirs = isc_features_to_metric(logits, splits=3, shuffle=False)
    ours = fidelity.inception_score(logits=logits, splits=3)
    assert ours == pytest.approx((theirs["inception_score_mean"], theirs["inception_score_std"]), rel=1e-10)


def test_inception_score_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        fidelity.inception_score()
    with pytest.raises(ValueError, match="sum"):
        fidelity.inception_score(torch.ones(4, 3))
    with pytest.raises(ValueError, match="splits"):
        fidelity.inception_score(torch.full((4, 2), 0.5), splits=5)


# --- images and weights ------------------------------------------------------------------

def test_dequantised_to_uint8():
    x5 = torch.arange(32, dtype=torch.float64)
    u5 = x5 + torch.rand(32, dtype=torch.float64) * 0.999
    assert torch.equal(fidelity.dequantised_to_uint8(u5, 5), (x5 * 8).to(torch.uint8))
    u8 = torch.tensor([0.2, 17.9, 255.99])
    assert fidelity.dequantised_to_uint8(u8, 8).tolist() == [0, 17, 255]


def test_missing_weights_say_what_to_get(tmp_path):
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(fidelity.InceptionWeightsMissing, match=fidelity.INCEPTION_WEIGHTS_FILE) as info:
        fidelity.fid_and_inception_score(images, images, feature_extractor_weights_path=None)
    assert fidelity.INCEPTION_WEIGHTS_URL in str(info.value)
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        fidelity.fid_and_inception_score(images, feature_extractor_weights_path=missing)


def test_images_must_be_uint8_rgb(tmp_path):
    weights = tmp_path / "w.pth"
    weights.touch()
    with pytest.raises(ValueError, match="uint8"):
        fidelity.fid_and_inception_score(torch.zeros(4, 3, 8, 8), feature_extractor_weights_path=weights)
    with pytest.raises(ValueError, match=r"\(N >= 2, 3, H, W\)"):
        fidelity.fid_and_inception_score(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), feature_extractor_weights_path=weights)


# --- the torch-fidelity path, with a random network ---------------------------------------

@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """torch-fidelity's Inception-v3 with random (He-initialised) weights, and its weights file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    folder = tmp_path_factory.mktemp("random_inception")
    empty = folder / "empty.pth"
    torch.save({}, empty)
    with pytest.MonkeyPatch.context() as patch:
        # skip loading: keep PyTorch's random initialisation
        patch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, *args, **kwargs: None)
        torch.manual_seed(0)
        network = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(empty)
        )
    # He initialisation keeps activations O(1) through the network, so features are informative
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight)
            torch.nn.init.zeros_(module.bias)
    weights = folder / "random-inception.pth"
    torch.save(network.state_dict(), weights)
    return network.eval(), weights


@pytest.mark.slow
def test_torch_fidelity_path_agrees_with_the_formulas(random_inception):
    network, weights = random_inception
    generator = torch.Generator().manual_seed(0)
    generated = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=generator)
    reference = generated // 2
    result = fidelity.fid_and_inception_score(
        generated, reference, feature_extractor_weights_path=weights, isc_splits=1, batch_size=8, device="cpu"
    )
    with torch.no_grad():
        features_gen, logits_gen = network(generated)
        features_ref, _ = network(reference)
    assert features_gen.shape == (8, 2048) and logits_gen.shape == (8, 1008)
    expected_fid = fidelity.frechet_distance_of_features(features_gen, features_ref)
    assert expected_fid > 0.1  # the random features do tell the two sets apart
    assert result["fid"] == pytest.approx(expected_fid, rel=1e-6)
    expected_is = fidelity.inception_score(logits=logits_gen, splits=1)[0]
    assert result["inception_score"] == pytest.approx(expected_is, rel=1e-6)
    assert 1 <= result["inception_score"] <= 1008
