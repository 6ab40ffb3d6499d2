"""funnelkit.models.inspection: Eq. 6 layer by layer adds up to log_prob, the data after each layer,
and a 2-D -> 1-D funnel seen from inside (its decoder's density is p_phi's own)."""

import math

import numpy as np
import pytest
import torch

from funnelkit.data import four_circles
from funnelkit.models import plane_model
from funnelkit.models.inspection import eq6_table, funnel_inside, layer_stages, short_name


@pytest.fixture(scope="module")
def x():
    return four_circles(64, seed=3)


@pytest.mark.parametrize("name", ["f-nsf", "nsf"])
def test_the_eq6_rows_add_up_to_the_mean_log_prob(name, x):
    torch.manual_seed(0)
    model = plane_model(name, preset="quick")
    rows, summed, log_prob = eq6_table(model, x)
    assert sum(row["contribution"] for row in rows) == pytest.approx(summed, abs=1e-3)
    assert summed == pytest.approx(log_prob, abs=1e-3)
    assert log_prob == pytest.approx(model.log_prob(x).mean().item(), abs=1e-3)
    dropped = [row["log p_φ(x₋|z)"] for row in rows[:-1]]
    assert (dropped[-1] != 0.0) == (name == "f-nsf")  # only the funnel has a decoder term
    assert all(d == 0.0 for d in dropped[:-1])


def test_the_stages_follow_the_layers_and_end_at_the_latent(x):
    torch.manual_seed(0)
    model = plane_model("f-nsf", preset="quick")
    stages = layer_stages(model, x)
    assert len(stages) == len(model.layers) + 1
    np.testing.assert_array_equal(stages[0].points, x.numpy())
    assert stages[-1].points.shape == (64, model.latent_dim)
    np.testing.assert_allclose(stages[-1].points, model.encode(x).detach().double().numpy(), atol=1e-4)
    assert "funnel" in stages[-1].title and stages[-1].log_p_dropped is not None


def test_the_funnel_from_inside_is_its_decoder_on_a_grid(x):
    torch.manual_seed(0)
    model = plane_model("f-nsf", preset="quick")
    inside = funnel_inside(model, x, resolution=6)
    funnel = model.layers[inside.layer_index]
    assert short_name(type(funnel).__name__) == "funnel"
    np.testing.assert_allclose(inside.z, model.encode(x)[:, 0].detach().double().numpy(), atol=1e-4)
    i, j = 2, 4  # one grid cell, computed directly
    direct = funnel.decoder.log_prob(torch.tensor([[inside.x_minus_axis[i]]], dtype=torch.float32),
                                     context=torch.tensor([[inside.z_axis[j]]], dtype=torch.float32))
    assert inside.log_p[i, j] == pytest.approx(direct.item(), abs=1e-3)  # float32, batched against one
    assert inside.z_axis.min() < inside.z.min() and inside.z.max() < inside.z_axis.max()
    assert math.isfinite(inside.log_p.sum())


def test_a_model_without_a_funnel_has_no_inside(x):
    assert funnel_inside(plane_model("nsf", preset="quick"), x) is None
