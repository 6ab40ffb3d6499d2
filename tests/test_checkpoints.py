"""Checkpoints: round trip, run folders, atomic writes, and clear errors for bad files."""

import json
import socket
import subprocess
import sys
import time

import pytest
import torch

import funnelkit as fk
import funnelkit.cli.main as cli
from funnelkit.checkpoints import read_checkpoint
from funnelkit.paths import shipped_checkpoint
from funnelkit.train import TrainConfig, Trainer

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
    assert gap < 0.08, f"{path} is {gap:.3f} nats below the true density"
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


def _damage(path, name, values):
    """Rewrite the checkpoint at ``path`` with ``values`` (NaN, inf) at the start of tensor ``name``."""
    payload = torch.load(path, weights_only=True)
    tensor = payload["state_dict"][name].flatten()
    tensor[: len(values)] = torch.tensor(values, dtype=tensor.dtype)
    payload["state_dict"][name] = tensor.reshape(payload["state_dict"][name].shape)
    torch.save(payload, path)
    return payload


@pytest.mark.parametrize("values", [[float("nan")], [float("nan"), float("inf"), -float("inf")]])
def test_a_checkpoint_with_non_finite_weights_is_refused_at_load(tmp_path, values):
    path = fk.save_checkpoint(tmp_path / "run" / "checkpoint.pt", small_plane_model("f-nsf"))
    names = [n for n, t in torch.load(path, weights_only=True)["state_dict"].items() if t.is_floating_point()]
    first, later = names[3], names[7]
    _damage(path, later, [float("nan")] * 5)  # a later tensor too: the message names the first, counts the rest
    payload = _damage(path, first, values)
    bad = int((~torch.isfinite(payload["state_dict"][first])).sum())
    assert bad == len(values)
    damaged = path.read_bytes()
    for load in (fk.load, read_checkpoint):
        for where in (path, path.parent):
            with pytest.raises(fk.CheckpointError) as refused:
                load(where)
            message = str(refused.value)
            assert str(path) in message and f"{first} has {bad:,} NaN or infinite value(s)" in message
            assert "and 1 more tensor(s)" in message and "\n" not in message
    assert path.read_bytes() == damaged  # refused, not touched


@pytest.mark.parametrize("command", ["eval", "sample"])
def test_the_command_line_refuses_a_checkpoint_with_nan_weights_in_one_line(tmp_path, capsys, command):
    path = fk.save_checkpoint(tmp_path / "run" / "checkpoint.pt", small_plane_model("f-nsf"))
    name = next(n for n, t in torch.load(path, weights_only=True)["state_dict"].items() if t.is_floating_point())
    _damage(path, name, [float("nan")] * 2)
    argv = [command, str(tmp_path / "run")] + (["--out", str(tmp_path / "s.png")] if command == "sample" else [])
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"funnelkit {command}: error: {path} holds non-finite weights: {name} has 2 ")
    assert not (tmp_path / "s.png").exists()


def test_the_trainer_still_resumes_its_own_checkpoints_and_releases_the_folder(tmp_path):
    def batch(n, generator):
        return fk.data.four_circles(n, seed=int(torch.randint(0, 10_000, (1,), generator=generator)))

    config = TrainConfig(steps=3, batch_size=16, eval_every=10, checkpoint_every=1)
    trainer = Trainer(small_plane_model("f-nsf"), batch, config, checkpoint_path=tmp_path / "run" / "checkpoint.pt")
    trainer.fit(progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]  # lock released, no temporary
    resumed = Trainer(small_plane_model("f-nsf"), batch, config, checkpoint_path=tmp_path / "run" / "checkpoint.pt")
    resumed.resume()
    assert resumed.step == 3
    for (name, a), b in zip(trainer.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_trainer_cannot_fit_into_a_folder_another_process_holds(tmp_path):
    from funnelkit.locks import RunFolderBusy

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"pid": sleeper.pid, "host": socket.gethostname(), "started": time.time()}
        (tmp_path / ".lock").write_text(json.dumps(record))
        trainer = Trainer(small_plane_model("nsf"), lambda n, g: fk.data.four_circles(n), TrainConfig(steps=2),
                          checkpoint_path=tmp_path / "checkpoint.pt")
        with pytest.raises(RunFolderBusy, match=f"process {sleeper.pid}"):
            trainer.fit(progress=False)
        assert trainer.step == 0 and not (tmp_path / "checkpoint.pt").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_finite_check_counts_exactly_where_a_sum_would_mislead():
    from funnelkit.checkpoints import check_finite

    huge = torch.full((10,), 3e38)  # finite values whose float32 sum overflows: accepted
    assert torch.isinf(huge.sum()) and check_finite({"w": huge}, "c.pt") is None
    opposite = torch.zeros(6)
    opposite[1], opposite[4] = float("inf"), -float("inf")  # their sum is NaN; two values are bad
    with pytest.raises(fk.CheckpointError, match=r"c.pt holds non-finite weights: w has 2 NaN or infinite value\(s\) of 6"):
        check_finite({"w": opposite, "steps": 3}, "c.pt")
    with pytest.raises(fk.CheckpointError, match="its state_dict is a list"):
        check_finite([huge], "c.pt")


def _with_config(path, config):
    payload = torch.load(path, map_location="cpu", weights_only=True)
    torch.save({**payload, "config": config}, path)


@pytest.mark.parametrize("build, current, retired", [
    (lambda: fk.models.tabular_model("nsf", "power", preset="quick", lr=0.01, steps=50),
     {"lr": 0.01, "steps": 50}, {"learning_rate": 0.01, "training_steps": 50}),
    (lambda: fk.models.tabular_model("vae", "power", preset="quick", vae_lr=0.02),
     {"vae_lr": 0.02}, {"vae_learning_rate": 0.02}),
    (lambda: fk.models.image_model("f-nsf", "mnist", 8, preset="quick", latent_dim=4),
     {"latent_dim": 4}, {"latent_size": 4}),
])
def test_a_checkpoint_written_with_retired_setting_names_loads_under_todays(tmp_path, build, current, retired):
    from funnelkit.checkpoints import save_checkpoint

    torch.manual_seed(0)
    model = build().eval()
    assert model.config["overrides"] == current
    path = tmp_path / "old.pt"
    save_checkpoint(path, model)
    _with_config(path, {**model.config, "overrides": retired})  # as a kit before the one vocabulary wrote it
    assert read_checkpoint(path)["config"]["overrides"] == current
    loaded = fk.load(path)  # rebuilt from the translated record: the weights fit it exactly
    assert loaded.config["overrides"] == current and loaded.latent_dim == model.latent_dim
    assert all(torch.equal(loaded.state_dict()[name], value) for name, value in model.state_dict().items())


def test_a_metrics_json_written_with_retired_setting_names_reads_under_todays(tmp_path):
    from funnelkit.runs import read_metrics

    record = {"builder": "tabular", "name": "nsf", "dataset": "power", "preset": "quick",
              "overrides": {"learning_rate": 0.01, "training_steps": 50, "flow_steps": 2}}
    (tmp_path / "metrics.json").write_text(json.dumps({"format": 1, "finished": True, "model": record}))
    assert read_metrics(tmp_path)["model"]["overrides"] == {"lr": 0.01, "steps": 50, "flow_steps": 2}
