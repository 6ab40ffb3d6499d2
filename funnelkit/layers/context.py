"""Routing of conditioning information inside funnel layers."""

import torch


def join_context(*parts):
    """Concatenate the non-``None`` context tensors along the feature axis (``None`` if none)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
