"""Checks shared by the layer tests."""

import torch


def assert_outer_context_reaches_the_decoder(layer, x, context_features):
    """An outer context leaves z alone, changes log p_phi, and sampling with it still satisfies the
    right-inverse condition, with the inverse returning minus the forward contribution."""
    c1 = torch.randn(x.shape[0], context_features, dtype=x.dtype)
    c2 = torch.randn(x.shape[0], context_features, dtype=x.dtype)
    (z1, v1), (z2, v2) = layer(x, context=c1), layer(x, context=c2)
    assert torch.equal(z1, z2) and not torch.allclose(v1, v2)
    x_sampled, minus_v = layer.inverse(z1, context=c1)
    z_again, v_again = layer(x_sampled, context=c1)
    assert torch.allclose(z_again, z1, atol=1e-9) and torch.allclose(v_again, -minus_v, atol=1e-9)
