"""Checkpoints: round trip, run folders, atomic writes, and clear errors for bad files."""

import pytest
import torch

import funnelkit as fk
from funnelkit.paths import shipped_checkpoint

from .conftest import perturb, small_plane_model


def test_round_trip_gives_the_same_density(tmp_path):
    model = perturb(small_plane_model("f-nsf"), scale=0.05)
    fk.save_checkpoint(tmp_path / "run" / "checkpoint.pt", model, metrics={"note": 1})
    x = fk.data.four_circles(64, dtype=torch.float64)
    for path in (tmp_path / "run" / "checkpoint.pt", tmp_path / "run"):
        loaded = fk.load(path)
        assert loaded.dtype == torch.float64 and not loaded.training
        assert torch.equal(loaded.log_prob(x), model.log_prob(x))
        assert loaded.metrics == {"note": 1}
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_payload_is_plain_data(tmp_path):
    path = fk.save_checkpoint(tmp_path / "c.pt", small_plane_model("nsf"))
    payload = torch.load(path, weights_only=True)  # would fail on a pickled class
    assert set(payload) >= {"state_dict", "config", "metrics", "versions"}
    assert payload["config"] == {"builder": "plane", "name": "nsf", "preset": "quick",
                                 "overrides": small_plane_model("nsf").config["overrides"]}


def test_missing_checkpoint_names_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no checkpoint at {tmp_path / 'nope'}"):
        fk.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        fk.load(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_corrupt_checkpoint_gives_a_clear_error_and_is_left_alone(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(fk.CheckpointError, match="is not a readable funnelkit checkpoint"):
        fk.load(path)
    assert path.read_bytes() == content


def test_a_checkpoint_of_something_else_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(fk.CheckpointError, match="expected keys state_dict and config"):
        fk.load(tmp_path / "other.pt")
    torch.save({"state_dict": {}, "config": {"builder": "zoo"}}, tmp_path / "zoo.pt")
    with pytest.raises(ValueError, match="unknown model builder 'zoo'"):
        fk.load(tmp_path / "zoo.pt")


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = fk.save_checkpoint(tmp_path / "c.pt", small_plane_model("nsf"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(fk.CheckpointError):
        fk.load(path)


@pytest.mark.parametrize("name", ["f-nsf", "nsf"])
def test_shipped_checkpoints_load_and_are_trained(name):
    path = shipped_checkpoint("four-circles", name, "quick")
    model = fk.load(path)
    x = fk.data.four_circles(20_000, seed=123)
    gap = (fk.data.four_circles_log_prob(x) - model.log_prob(x)).mean().item()
    assert gap < 0.08, f"{path.name} is {gap:.3f} nats below the true density"
    assert model.metrics["train_config"]["steps"] == model.metrics["steps"]


def test_atomic_writes_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    import os

    from funnelkit.files import write_atomically

    previous = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "result.md", lambda file: file.write(b"table"))
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"table" and (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["result.md"]  # no temporary file left behind
