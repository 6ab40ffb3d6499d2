"""funnelkit.validation: counts and temperatures at the public edges, numpy scalars included."""

import re
from fractions import Fraction

import numpy as np
import pytest
import torch

import funnelkit as fk
from funnelkit.app import gallery
from funnelkit.validation import check_int, check_positive_int, check_temperature

NUMPY_INTS = [np.int8(5), np.int16(5), np.int32(5), np.int64(5), np.uint8(5), np.uint64(5)]


@pytest.mark.parametrize("n", [5, *NUMPY_INTS], ids=lambda n: type(n).__name__)
def test_any_integral_count_is_accepted_and_returned_as_a_python_int(n):
    out = check_positive_int(n, "n")
    assert type(out) is int and out == 5


@pytest.mark.parametrize("n, kind", [
    (True, "bool"), (np.bool_(True), "bool"), (5.0, "float"), (np.float64(5.0), "float64"),
    ("5", "str"), (None, "NoneType"), (Fraction(5), "Fraction"), (torch.tensor(5), "Tensor"),
])
def test_bools_floats_and_other_types_are_refused_naming_the_type(n, kind):
    with pytest.raises(ValueError, match=rf"num_samples must be a positive int .* got .*\({kind}\)"):
        check_positive_int(n, "num_samples")


@pytest.mark.parametrize("n", [0, -3, np.int64(0), np.int32(-1)])
def test_counts_below_one_are_refused(n):
    with pytest.raises(ValueError, match=r"num_samples must be a positive int .* got " + re.escape(repr(n)) + "$"):
        check_positive_int(n, "num_samples")


@pytest.mark.parametrize("n, low, high", [(0, 0, None), (-7, None, 0), (16, 1, 16), (np.uint8(3), 3, 3),
                                           (np.int64(-2), -2, 2), (2**40, None, None)], ids=repr)
def test_check_int_returns_a_whole_number_within_its_bounds_as_a_python_int(n, low, high):
    out = check_int(n, "n", low, high)
    assert type(out) is int and out == int(n)


@pytest.mark.parametrize("n, low, high, message", [
    (0, 1, 16, "bits must be a whole number from 1 to 16, got 0"),
    (np.int32(17), 1, 16, "bits must be a whole number from 1 to 16, got np.int32(17)"),
    (1, 2, None, "bits must be a whole number of at least 2, got 1"),
    (3, None, 2, "bits must be a whole number of at most 2, got 3"),
    (True, 0, 1, "bits must be a whole number from 0 to 1, got True (bool)"),
    (4.0, None, None, "bits must be a whole number, got 4.0 (float)"),
    ("4", 1, 16, "bits must be a whole number from 1 to 16, got '4' (str)"),
], ids=repr)
def test_check_int_refuses_naming_the_bounds_and_what_came(n, low, high, message):
    with pytest.raises(ValueError) as error:
        check_int(n, "bits", low, high)
    assert str(error.value) == message


def test_check_int_writes_the_callers_message_with_its_bounds():
    with pytest.raises(ValueError) as error:
        check_int(2.5, "bits", 1, 16, message="{name} must be an int in [{low}, {high}]")
    assert str(error.value) == "bits must be an int in [1, 16], got 2.5 (float)"


@pytest.mark.parametrize("t", [0.5, 2, np.float32(0.5), np.float64(0.5), np.int64(2)], ids=repr)
def test_a_real_temperature_is_accepted_and_returned_as_a_float(t):
    out = check_temperature(t)
    assert type(out) is float and out == float(t)


@pytest.mark.parametrize("t", [0, -1.0, float("nan"), np.float32("inf"), True, "0.5", 1j, None], ids=repr)
def test_a_bad_temperature_is_refused(t):
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        check_temperature(t)


# -- where counts enter the public API --------------------------------------------------------------
@pytest.fixture(scope="module")
def plane():
    torch.manual_seed(0)
    return fk.models.plane_model("f-nsf", preset="quick").eval()


def _seeded(fn):
    torch.manual_seed(7)
    return fn()


@pytest.mark.parametrize("n", NUMPY_INTS[:4], ids=lambda n: type(n).__name__)
def test_a_funnel_flow_samples_a_numpy_count_as_the_same_python_count(plane, n):
    with torch.no_grad():
        assert torch.equal(_seeded(lambda: plane.sample(n)), _seeded(lambda: plane.sample(5)))
        x, log_p = _seeded(lambda: plane.sample_and_log_prob(n, temperature=np.float32(0.5)))
        y, log_q = _seeded(lambda: plane.sample_and_log_prob(5, temperature=0.5))
    assert x.shape == (5, 2) and torch.equal(x, y) and torch.equal(log_p, log_q)


@pytest.mark.parametrize("bad", [True, 5.0, "5", 0])
def test_a_funnel_flow_refuses_a_bad_count_with_the_kits_message(plane, bad):
    for draw in (plane.sample, plane.sample_and_log_prob):
        with pytest.raises(ValueError, match="num_samples must be a positive int"):
            draw(bad)


def test_a_vae_samples_a_numpy_count_as_the_same_python_count():
    torch.manual_seed(0)
    vae = fk.models.tabular_model("vae", "power").eval()
    with torch.no_grad():
        assert torch.equal(_seeded(lambda: vae.sample(np.int64(4))), _seeded(lambda: vae.sample(4)))
    with pytest.raises(ValueError, match=r"num_samples must be a positive int .* got 4.0 \(float\)"):
        vae.sample(4.0)


def test_gallery_sample_requests_take_numpy_scalars():
    n, temperature, seed = gallery.check_sample_request(np.int64(9), np.float32(0.75), np.int32(3))
    assert (type(n), type(temperature), type(seed)) == (int, float, int)
    assert (n, temperature, seed) == (9, 0.75, 3)
    with pytest.raises(ValueError, match="number of samples must be a positive int"):
        gallery.check_sample_request(np.float64(9), 0.75, 3)
