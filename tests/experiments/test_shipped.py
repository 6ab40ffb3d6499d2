"""Shipped runs: a shipped copy loads as the same finished run (same weights, same numbers) at a
fraction of the size; it refuses to resume; bad folders are refused before anything is written;
and the runs the kit ships in data/runs are finished, loadable, and match their metrics."""

import json

import pytest
import torch

import funnelkit as fk
from funnelkit.checkpoints import read_checkpoint
from funnelkit.cli.main import main
from funnelkit.experiments import runs
from funnelkit.runs import describe_run
from funnelkit.experiments.shipped import KEPT_TRAINER_STATE, SHIPPED_RUNS, finished_runs, ship, use_shipped
from funnelkit.train import Trainer

from .test_runs import flat, run


def test_a_shipped_run_loads_as_the_same_finished_run_and_is_smaller(tmp_path):
    original = run(tmp_path / "runs" / "toy-quick" / "a")
    written = ship(tmp_path / "runs" / "toy-quick", to=tmp_path / "shipped")
    assert written == [tmp_path / "shipped" / "toy-quick" / "a"]
    full = read_checkpoint(tmp_path / "runs" / "toy-quick" / "a")
    slim = read_checkpoint(written[0])
    assert set(slim["trainer"]) == set(KEPT_TRAINER_STATE) & set(full["trainer"])
    assert "optimizer" in full["trainer"]
    for name, tensor in full["state_dict"].items():
        assert torch.equal(slim["state_dict"][name], tensor)
    assert written[0].joinpath("checkpoint.pt").stat().st_size < 0.6 * (tmp_path / "runs/toy-quick/a/checkpoint.pt").stat().st_size

    copied = use_shipped(tmp_path / "work", shipped=tmp_path / "shipped")
    assert copied == [tmp_path / "work" / "toy-quick" / "a"]
    again = run(copied[0])  # the same model and training settings: loaded, not trained
    assert again.status == "loaded"
    assert torch.equal(flat(again.model), flat(original.model))
    assert again.metrics["evaluation"] == original.metrics["evaluation"]
    assert use_shipped(tmp_path / "work", shipped=tmp_path / "shipped") == []  # already there: nothing copied
    assert use_shipped(tmp_path / "other", groups=[], shipped=tmp_path / "shipped") == []
    with pytest.raises(ValueError, match="expected some of \\['toy-quick'\\]"):
        use_shipped(tmp_path / "other", groups=["table9-quick"], shipped=tmp_path / "shipped")
    assert not (tmp_path / "other").exists()


def test_a_shipped_run_refuses_to_resume(tmp_path):
    run(tmp_path / "runs" / "a")
    [shipped] = ship(tmp_path / "runs" / "a", to=tmp_path / "shipped")
    model = fk.load(shipped)
    trainer = Trainer(model, lambda n, g: fk.data.four_circles(n, generator=g), runs.train_config(20, 32, 3e-3))
    with pytest.raises(ValueError, match="cannot resume"):
        trainer.resume(shipped / "checkpoint.pt")


def test_ship_refuses_missing_unfinished_and_damaged_runs_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        ship(tmp_path / "nowhere", to=tmp_path / "shipped")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no finished run"):
        ship(tmp_path / "empty", to=tmp_path / "shipped")
    run(tmp_path / "group" / "good")
    run(tmp_path / "group" / "bad")
    (tmp_path / "group" / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable funnelkit checkpoint"):
        ship(tmp_path / "group", to=tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()


def test_the_ship_command_reports_what_it_wrote_and_errors_clearly(tmp_path, capsys):
    run(tmp_path / "runs" / "toy-quick" / "a")
    assert main(["ship", str(tmp_path / "runs" / "toy-quick"), "--to", str(tmp_path / "shipped")]) == 0
    assert "shipped" in capsys.readouterr().out
    assert (tmp_path / "shipped" / "toy-quick" / "a" / "metrics.json").is_file()
    assert main(["ship", str(tmp_path / "missing")]) == 2
    assert "no folder" in capsys.readouterr().err


SHIPPED = sorted(p.parent for p in SHIPPED_RUNS.glob("*/*/checkpoint.pt"))


def test_the_kit_ships_the_quick_runs_of_four_circles_table1_table2_and_table4():
    groups = {p.parent.name for p in SHIPPED}
    assert {"four-circles-quick", "images-quick", "table1-quick", "table4-quick"} <= groups
    for group in groups:
        assert finished_runs(SHIPPED_RUNS / group)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_shipped_run_loads_and_its_metrics_say_how_it_was_made(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["finished"]
    payload = read_checkpoint(folder)
    # `funnelkit ship` drops what only a resumed training needs; the four-circles runs keep Adam's moments,
    # which the dashboard continues them with (tests/test_live.py: no jump in the loss)
    assert ("optimizer" in payload["trainer"]) == (folder.parent.name == "four-circles-quick")
    assert payload["trainer"]["step"] == metrics["training"]["steps"] == payload["trainer"]["config"]["steps"]
    model = fk.load(folder)
    assert model.num_parameters() == metrics["parameters"]
    assert all(torch.isfinite(p).all() for p in model.parameters())



def test_a_shipped_image_run_gives_its_stored_numbers_when_evaluated_again():
    from funnelkit.experiments.commands import evaluate_run

    folder = SHIPPED_RUNS / "images-quick" / "mnist5-first10k-h1000-s400-f-nsf"
    stored = json.loads((folder / "metrics.json").read_text())["evaluation"]
    _, _, numbers, records, _ = evaluate_run(folder)  # the held-out images rebuilt from the model's config
    assert numbers["bpd"] == pytest.approx(stored["bpd"], abs=1e-6)
    assert numbers["bpd_2se"] == pytest.approx(stored["bpd_2se"], abs=1e-6)
    assert records[0]["stand_in"]


def test_a_float16_copy_is_half_the_size_and_records_the_numbers_its_weights_give(tmp_path):
    from funnelkit.experiments.commands import evaluate_run
    from funnelkit.experiments.shipped import FLOAT16_TOLERANCE

    source = SHIPPED_RUNS / "images-quick" / "mnist5-first10k-h1000-s400-f-nsf"
    [copy] = ship(source, to=tmp_path, float16=True)
    payload, original = read_checkpoint(copy), read_checkpoint(source)
    assert {t.dtype for t in payload["state_dict"].values() if t.is_floating_point()} == {torch.float16}
    weight_bytes = [sum(t.numel() * t.element_size() for t in p["state_dict"].values()) for p in (payload, original)]
    assert weight_bytes[0] < 0.51 * weight_bytes[1]  # float32 -> float16; the rest of the file is small
    assert (copy / "checkpoint.pt").stat().st_size < 0.75 * (source / "checkpoint.pt").stat().st_size
    metrics = json.loads((copy / "metrics.json").read_text())
    before = json.loads((source / "metrics.json").read_text())["evaluation"]
    assert metrics["shipped_weights"]["evaluation_in_float32"] == before
    assert 0 < abs(metrics["evaluation"]["bpd"] - before["bpd"]) <= FLOAT16_TOLERANCE  # rounded: moved, a little
    model, _, numbers, _, _ = evaluate_run(copy)  # the copy's stored numbers are what its weights give
    assert model.dtype == torch.float32
    assert numbers["bpd"] == pytest.approx(metrics["evaluation"]["bpd"], abs=1e-6)
    per_image = torch.load(copy / "evaluation.pt", weights_only=True)["bpd"]
    assert per_image.mean().item() == pytest.approx(numbers["bpd"], abs=1e-6)
    for name, tensor in original["state_dict"].items():
        assert torch.equal(payload["state_dict"][name], tensor.half() if tensor.is_floating_point() else tensor)


def test_a_run_that_float16_would_move_too_far_is_shipped_in_float32(tmp_path, monkeypatch, capsys):
    from funnelkit.experiments import shipped

    monkeypatch.setattr(shipped, "FLOAT16_TOLERANCE", 0.0)
    source = SHIPPED_RUNS / "images-quick" / "mnist5-first10k-h1000-s400-f-nsf"
    [copy] = ship(source, to=tmp_path, float16=True)
    assert "kept in float32" in capsys.readouterr().out
    for name, tensor in read_checkpoint(source)["state_dict"].items():
        assert torch.equal(read_checkpoint(copy)["state_dict"][name], tensor)
    assert json.loads((copy / "metrics.json").read_text())["evaluation"] == \
        json.loads((source / "metrics.json").read_text())["evaluation"]


def test_trained_loads_one_shipped_model_by_name_and_says_how_it_was_trained(tmp_path):
    run(tmp_path / "runs" / "toy-quick" / "a")
    ship(tmp_path / "runs" / "toy-quick", to=tmp_path / "shipped")
    model = fk.trained("toy-quick", model=describe_run(tmp_path / "shipped/toy-quick/a").model,
                       shipped=tmp_path / "shipped")
    stored = read_checkpoint(tmp_path / "runs" / "toy-quick" / "a")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stored["state_dict"].items())
    assert not model.training and model.run.finished
    assert model.trained_line.startswith(f"{model.run.model.upper()}: Trained {model.run.steps:,} steps")
    with pytest.raises(ValueError, match="no shipped runs 'elsewhere' .*expected one of \\['toy-quick'\\]"):
        fk.trained("elsewhere", "f-nsf", shipped=tmp_path / "shipped")
    with pytest.raises(ValueError, match="no shipped runs of 'glow' .* expected one of"):
        fk.trained("toy-quick", "glow", shipped=tmp_path / "shipped")


def test_trained_asks_for_the_latent_size_when_two_runs_share_a_model():
    with pytest.raises(ValueError, match="2 shipped runs of 'f-nsf'.*pass latent_size"):
        fk.trained("table4-quick", "f-nsf")
    assert fk.trained("table4-quick", "f-nsf", latent_size=4).run.latent_size == 4
    assert fk.trained("table1-quick", "nsf", dataset="gas").run.dataset == "gas"
