import atexit
import os
import shutil
import tempfile

import pytest
import torch

import funnelkit as fk

# The tests use small models, where a second thread buys nothing and OpenMP threads spinning
# against the other processes of the suite (CLI runs, the app server, notebook kernels) cost
# up to ten times the time. Subprocesses inherit the setting.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)
# The kit's cache folder is one of the suite's own: no test reads what a user's runs left in
# ~/.cache/funnelkit (the dashboard's opening frames, downloads), nor leaves files there.
os.environ["FUNNELKIT_CACHE"] = tempfile.mkdtemp(prefix="funnelkit-tests-cache-")
atexit.register(shutil.rmtree, os.environ["FUNNELKIT_CACHE"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _seeded():
    fk.seed_everything(0)


def small_plane_model(name="f-nsf", dtype=torch.float64):
    """A small four-circles model, fast enough for exactness checks on a grid."""
    model = fk.models.plane_model(name, preset="quick", hidden_features=16, num_bins=8,
                                  decoder_hidden_features=16, decoder_num_bins=6)
    return model.to(dtype)


def perturb(model, scale=0.3, seed=1):
    """Move every parameter off its (often identity) initialisation so bugs cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model
