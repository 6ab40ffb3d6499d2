"""2-D densities on a grid: for pictures and for the normalisation checks (integral = 1)."""

import torch


def grid_points(bounds=(-4.0, 4.0), resolution=200, dtype=torch.float32):
    """Cell centres of a ``resolution`` x ``resolution`` grid on ``bounds``^2 and the cell area.

    Returns ``(axis, points, cell_area)``: ``points`` is ``(resolution**2, 2)`` in row-major
    order (x_2 varies slowest), so ``values.reshape(resolution, resolution)`` is an image
    whose rows follow x_2 and columns follow x_1.
    """
    low, high = bounds
    width = (high - low) / resolution
    axis = low + width * (torch.arange(resolution, dtype=dtype) + 0.5)
    x2, x1 = torch.meshgrid(axis, axis, indexing="ij")
    return axis, torch.stack([x1.flatten(), x2.flatten()], dim=1), width**2


@torch.no_grad()
def grid_log_prob(log_prob, bounds=(-4.0, 4.0), resolution=200, dtype=torch.float32, batch_size=20_000):
    """``log_prob`` on the grid: returns ``(axis, image)`` with ``image[i, j] = log p(x1_j, x2_i)``."""
    axis, points, _ = grid_points(bounds, resolution, dtype)
    values = torch.cat([log_prob(chunk) for chunk in points.split(batch_size)])
    return axis, values.reshape(resolution, resolution)


@torch.no_grad()
def integrate_density(log_prob, bounds=(-8.0, 8.0), resolution=800, dtype=torch.float64):
    """The midpoint-rule integral of exp(log_prob) over ``bounds``^2 (1 for a normalised density)."""
    _, points, cell_area = grid_points(bounds, resolution, dtype)
    total = sum(torch.exp(log_prob(chunk)).sum() for chunk in points.split(20_000))
    return (total * cell_area).item()
