"""The kit's digit metric: the shipped classifier, its torch-fidelity feature extractor, FID/KID/IS
through torch-fidelity checked against the kit's own formulas on the same features, and bad input."""

import shutil
import warnings

import pytest
import torch

from funnelkit import fidelity
from funnelkit.digits import (CLASSIFIER_PATH, TRAIN_COMMAND, ClassifierFileError, ClassifierMissing, DigitClassifier,
                              digit_metrics, load_classifier, mnist_digits_split, register)
from funnelkit.digits.metric import EXTRACTOR_NAME, check_metric_digits, digit_metric_applies
from funnelkit.digits.training import accuracy, shifted

N = 200  # digits per set in these tests: enough for FID's 128-dim covariances to mean something, fast


@pytest.fixture(scope="module")
def split():
    return mnist_digits_split()


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def noise(n, seed=0):
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_the_shipped_classifier_is_small_loads_weights_only_and_reads_held_out_digits(split, classifier):
    assert CLASSIFIER_PATH.stat().st_size < 1_000_000
    state = torch.load(CLASSIFIER_PATH, weights_only=True)
    assert set(state) == set(DigitClassifier().state_dict())
    _, _, held, held_labels = split
    assert accuracy(classifier, held, held_labels) > 0.97  # 0.985 when it was made (data/README.md)


def test_the_classifier_never_saw_the_reference_it_is_the_image_results_held_out_split(split):
    from funnelkit.data.images import OfflineDataWarning
    from funnelkit.experiments import table2

    train, _, held, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        column = table2.load_columns(table2.PRESETS["quick"])[0]
    assert len(train) == 9000 and torch.equal(held, column.test)
    assert torch.equal(train, column.images[column.train_index])


def test_torch_fidelity_gets_the_classifiers_own_features_and_logits(split, classifier):
    from torch_fidelity.utils import create_feature_extractor

    register()
    extractor = create_feature_extractor(EXTRACTOR_NAME, ["logits", "128"], cuda=False, verbose=False,
                                         feature_extractor_weights_path=str(CLASSIFIER_PATH))
    digits = split[2][:50]
    logits, features = extractor(digits)
    assert features.shape == (50, 128) and logits.shape == (50, 10)
    assert torch.equal(features, classifier.features(digits))
    assert torch.equal(logits, classifier(digits))
    assert torch.allclose(logits, features @ classifier.logits.weight.T + classifier.logits.bias, atol=1e-5)


def test_registration_is_once_and_names_the_default_layers():
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    first, second = register(), register()
    assert first is second and FEATURE_EXTRACTORS_REGISTRY[EXTRACTOR_NAME] is first
    assert [first.get_default_feature_layer_for_metric(m) for m in ("fid", "kid", "isc")] == ["128", "128", "logits"]


def test_fid_and_is_of_torch_fidelity_equal_the_kits_formulas_on_the_same_features(split, classifier):
    reference, images = split[2][:N], split[0][:N]
    scores = digit_metrics(images, reference, is_splits=1)
    expected_fid = fidelity.frechet_distance_of_features(classifier.features(images), classifier.features(reference))
    expected_is, _ = fidelity.inception_score(logits=classifier(images), splits=1)
    assert scores["fid"] == pytest.approx(expected_fid, rel=1e-3)
    assert scores["is"] == pytest.approx(expected_is, rel=1e-6)
    assert scores["n"] == N and scores["n_reference"] == N and scores["kid_subset_size"] == N // 2
    assert "128-wide" in scores["metric"] and "Inception" not in scores["metric"]


def test_a_set_against_itself_is_zero_real_digits_are_near_and_noise_is_far(split):
    reference = split[2][:N]
    itself = digit_metrics(reference, reference)
    real = digit_metrics(split[0][:N], reference)
    far = digit_metrics(noise(N), reference)
    assert abs(itself["fid"]) < 1e-3 and abs(itself["kid"]) < 0.1 * far["kid"]
    assert real["fid"] < 0.05 * far["fid"] and far["fid"] > 500
    # noise is one class to the classifier; real digits all ten (IS < 10 on splits of 20 digits)
    assert far["is"] < 1.5 < 6 < real["is"] <= 10


def test_is_alone_needs_no_reference_and_the_default_reference_is_the_held_out_thousand(split):
    only_is = digit_metrics(split[0][:20], metrics=("is",), is_splits=2)
    assert only_is["fid"] is None and only_is["kid"] is None and only_is["n_reference"] is None
    assert only_is["is"] > 1
    scores = digit_metrics(split[0][:N], metrics=("fid",))
    assert scores["n_reference"] == 1000
    assert scores["fid"] == pytest.approx(digit_metrics(split[0][:N], split[2], metrics=("fid",))["fid"])


def test_the_metric_applies_to_mnist_digits_only():
    assert digit_metric_applies("mnist", torch.zeros(2, 1, 28, 28))
    assert not digit_metric_applies("cifar10", torch.zeros(2, 3, 32, 32))
    assert not digit_metric_applies("fashion-mnist", torch.zeros(2, 1, 28, 28))


@pytest.mark.parametrize("images, expected", [
    (torch.linspace(0, 1, 4 * 784).reshape(4, 1, 28, 28),
     r"uint8 digits \(N, 1, 28, 28\) in 0\.\.255, got torch.float32 with values in \[0, 1\]; .*to_uint8_images"),
    (torch.zeros(4, 28, 28, dtype=torch.uint8), r"shape \(N, 1, 28, 28\), got \(4, 28, 28\)"),
    (torch.zeros(4, 3, 32, 32, dtype=torch.uint8), r"shape \(N, 1, 28, 28\), got \(4, 3, 32, 32\)"),
    (torch.zeros(1, 1, 28, 28, dtype=torch.uint8), "at least 2 digits, got 1"),
    ((torch.arange(4 * 784).reshape(4, 1, 28, 28) % 32).to(torch.uint8), "b-bit values.*to_uint8_images"),
    (torch.zeros(4, 1, 28, 28, dtype=torch.int64), "dtype torch.int64"),
    ([[0]], "torch uint8 tensor.*got list"),
])
def test_bad_images_are_refused_naming_what_was_expected(images, expected):
    with pytest.raises(ValueError, match=expected):
        digit_metrics(images)


def test_dark_8_bit_digits_pass_when_the_range_check_is_off():
    dark = torch.randint(0, 32, (4, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert torch.equal(check_metric_digits(dark, check_range=False), dark)
    on_5_bit_grid = dark // 8 * 8  # what to_uint8_images makes of 5-bit samples: accepted as they are
    assert torch.equal(check_metric_digits(on_5_bit_grid), on_5_bit_grid)


def test_too_few_digits_for_kid_or_is_and_unknown_metrics_are_refused(split):
    images = split[0][:20]
    with pytest.raises(ValueError, match="KID's subset size 50 needs at least that many digits.*got 20 images"):
        digit_metrics(images, split[2][:100], kid_subset_size=50)
    with pytest.raises(ValueError, match="is_splits between 1 and the number of images \\(20\\), got 30"):
        digit_metrics(images, metrics=("is",), is_splits=30)
    with pytest.raises(ValueError, match="some of 'fid', 'kid', 'is', got 'fid'"):
        digit_metrics(images, metrics="fid")
    with pytest.raises(ValueError, match="got \\('fid', 'lpips'\\)"):
        digit_metrics(images, metrics=("fid", "lpips"))
    with pytest.raises(ValueError, match="got None"):
        digit_metrics(images, metrics=None)


def test_a_missing_or_broken_classifier_file_names_the_file_and_the_command(tmp_path, split):
    missing = tmp_path / "absent.pt"
    with pytest.raises(ClassifierMissing, match=f"{missing}.*missing.*{TRAIN_COMMAND}") as caught:
        digit_metrics(split[0][:10], split[2][:10], classifier_path=missing)
    assert isinstance(caught.value, FileNotFoundError)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(ClassifierFileError, match=f"{corrupt} cannot be read.*{TRAIN_COMMAND}"):
        load_classifier(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(ClassifierFileError, match="does not fit DigitClassifier"):
        load_classifier(other)
    nan = tmp_path / "nan.pt"
    state = torch.load(CLASSIFIER_PATH, weights_only=True)
    state["logits.bias"] = torch.full_like(state["logits.bias"], float("nan"))
    torch.save(state, nan)
    with pytest.raises(ClassifierFileError, match="NaN"):
        load_classifier(nan)
    copy = tmp_path / "copy.pt"
    shutil.copy(CLASSIFIER_PATH, copy)  # a good file elsewhere is used as given
    assert digit_metrics(split[0][:10], split[2][:10], classifier_path=copy, metrics=("fid",))["fid"] > 0


def test_training_shifts_each_digit_by_its_own_offset_with_zeros_at_the_edge():
    digits = torch.arange(3 * 784).reshape(3, 1, 28, 28).to(torch.uint8)
    assert torch.equal(shifted(digits, 0, torch.Generator()), digits)
    dy, dx = torch.randint(0, 5, (2, 3), generator=torch.Generator().manual_seed(7))
    moved = shifted(digits, 2, torch.Generator().manual_seed(7))
    padded = torch.nn.functional.pad(digits, (2, 2, 2, 2))
    for i in range(3):
        assert torch.equal(moved[i], padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28])


def test_the_train_command_refuses_bad_settings_and_writes_nothing(tmp_path, capsys):
    from funnelkit.cli.main import main

    out = tmp_path / "c.pt"
    assert main(["digits", "train", "--epochs", "0", "--out", str(out)]) == 2
    assert "funnelkit digits: error: --epochs must be at least 1, got 0" in capsys.readouterr().err
    assert main(["digits", "train", "--threads", "0", "--out", str(out)]) == 2
    assert not out.exists()
