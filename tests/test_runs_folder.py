"""funnelkit.runs, the one owner of run folders: a folder made with other settings is refused
through the command line (exit 2, one line naming the setting, both values and the way out,
every file byte-identical); ``--extend`` continues a finished run and says so in metrics.json,
and an interrupted extension resumes; legacy folders read as the current format.

Oracles: an extension's weights equal those of a Trainer built by hand from the stored weights
with the extension's documented settings; a legacy file describes the same run as the format-1
file it was made from; a resumed extension ends on the uninterrupted one's weights.
"""

import dataclasses
import json

import pytest
import torch

import funnelkit as fk
from funnelkit import runs as folders
from funnelkit.checkpoints import read_checkpoint
from funnelkit.cli.main import main
from funnelkit.experiments import commands, four_circles
from funnelkit.experiments import runs as experiment_runs

from .conftest import small_plane_model
from .test_cli_experiments import _offline  # noqa: F401 (autouse: an empty cache, the run's folder as the cwd)


def snapshot(folder):
    """Every file of ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys):
    error = capsys.readouterr().err
    lines = error.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in error, error
    return lines[0]




@pytest.fixture(scope="module")
def circles_run(tmp_path_factory):
    """``funnelkit train four-circles --steps 6``: a finished four-circles run folder."""
    out = tmp_path_factory.mktemp("circles") / "run"
    assert main(["train", "four-circles", "--steps", "6", "--out", str(out), "--device", "cpu"]) == 0
    return out


# --------------------------------------------------------------------------------------------
# refusals, through the command line
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--steps", "6", "--seed", "5"], ["its seed is 0, this asks for 5", "--seed", "another folder"]),
    (["--steps", "9"], ["its steps are 6, this asks for 9", "another folder", "--steps 9 --extend",
                        "fresh learning-rate schedule"]),
    (["--steps", "6", "--model", "nsf"], ["its model is 'f-nsf', this asks for 'nsf'", "another folder"]),
    (["--steps", "6", "--preset", "paper"], ["its preset is 'quick', this asks for 'paper'", "another folder"]),
    (["--steps", "4", "--extend"], ["has trained 6 steps; --extend cannot shorten it to 4", "another folder"]),
    (["--extend"], ["--extend needs --steps N"]),
])
def test_a_four_circles_folder_with_other_settings_is_refused_and_left_as_it_was(circles_run, capsys, args, words):
    before = snapshot(circles_run)
    assert main(["train", "four-circles", *args, "--out", str(circles_run), "--device", "cpu"]) == 2
    line = error_line(capsys)
    assert line.startswith("funnelkit train: error: ")
    for word in words:
        assert word in line
    assert snapshot(circles_run) == before  # nothing written, no lock or temporary left


def fabricated_run(spec, out):
    """A finished run folder of ``spec`` as ``funnelkit train`` would make it, trained on random
    values for its steps (the folder's settings are what the refusals read, not its quality)."""
    settings = commands.training_settings(spec)
    model = commands.build_model(spec)
    config = experiment_runs.train_config(settings["steps"], settings["batch_size"], settings["lr"], seed=spec.seed)
    shape = model.data_shape

    def batches(n, generator):
        return torch.rand((n, *shape), generator=generator) * 2 ** commands.bits_of(spec)

    experiment_runs.train_or_load(model, batches, config, out, evaluate=lambda m: ({}, None), progress=False)
    return out


@pytest.mark.parametrize("made, asked, words", [
    (["images", "--dataset", "mnist", "--bits", "5"], ["images", "--dataset", "mnist", "--bits", "8"],
     ["its bits are 5, this asks for 8", "--bits"]),
    (["images", "--dataset", "mnist", "--bits", "5"], ["images", "--dataset", "fashion-mnist", "--bits", "5"],
     ["its dataset is 'mnist', this asks for 'fashion-mnist'", "--dataset"]),
    (["anomaly", "--latent-size", "16"], ["anomaly", "--latent-size", "4"],
     ["its latent size is 16, this asks for 4", "--latent-size"]),
])
def test_a_folder_of_other_data_bits_or_latent_size_is_refused_before_the_data_are_read(tmp_path, capsys, made,
                                                                                        asked, words):
    def spec_of(words):
        options = dict(zip(words[1::2], words[2::2]))
        return commands.make_spec(words[0], "f-nsf", "quick", options.get("--dataset"),
                                  int(options["--bits"]) if "--bits" in options else None,
                                  int(options["--latent-size"]) if "--latent-size" in options else None, steps=1)

    out = fabricated_run(spec_of(made), tmp_path / "run")
    before = snapshot(out)
    assert main(["train", *asked, "--model", "f-nsf", "--steps", "1", "--out", str(out), "--device", "cpu"]) == 2
    line = error_line(capsys)
    for word in ["holds another run", *words, "another folder"]:
        assert word in line
    assert snapshot(out) == before
    assert not (tmp_path / "cache").exists()  # refused before any data was looked for


def test_the_same_command_again_loads_the_run_and_writes_nothing(circles_run, capsys):
    before = snapshot(circles_run)
    assert main(["train", "four-circles", "--steps", "6", "--out", str(circles_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "loaded the finished run (not trained again)" in out and "read " in out
    assert snapshot(circles_run) == before


# --------------------------------------------------------------------------------------------
# --extend
# --------------------------------------------------------------------------------------------

def test_extend_continues_a_finished_run_with_a_fresh_schedule_and_records_it(circles_run, tmp_path, capsys):
    import shutil

    folder = tmp_path / "extended"
    shutil.copytree(circles_run, folder)
    base = read_checkpoint(folder)
    assert main(["train", "four-circles", "--steps", "10", "--extend", "--out", str(folder), "--device", "cpu"]) == 0
    assert "extended the finished run: 10 steps" in capsys.readouterr().out
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["format"] == 1 and metrics["finished"] and metrics["status"] == "extended"
    assert metrics["training"]["steps"] == 10
    [extension] = metrics["training"]["extensions"]
    assert (extension["from_step"], extension["to_step"], extension["finished"]) == (6, 10, True)
    assert extension["generator_seed"] == folders.extension_seed(0, 1)
    assert extension["command"].endswith("--steps 10 --out " + str(folder) + " --extend")
    assert metrics["describe"]["command"].startswith("funnelkit train four-circles --model f-nsf --preset quick "
                                                     "--steps 6")  # the command that made the run first
    payload = read_checkpoint(folder)
    assert payload["trainer"]["step"] == 10 and payload["trainer"]["scheduler"]["T_max"] == 4
    assert payload["trainer"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed

    # the same four steps a second way: a Trainer built by hand from the stored weights, a fresh
    # Adam and schedule over 4 steps, the data stream of the extension's seed
    config = four_circles.train_config("quick", steps=4, seed=folders.extension_seed(0, 1))
    model = fk.models.plane_model("f-nsf", preset="quick")
    model.load_state_dict(base["state_dict"])
    fk.Trainer(model, four_circles.sample_batch, config).fit(progress=False)
    for name, tensor in model.state_dict().items():
        assert torch.equal(payload["state_dict"][name], tensor), name

    before = snapshot(folder)  # the same command again: nothing left to do, nothing written
    assert main(["train", "four-circles", "--steps", "10", "--extend", "--out", str(folder), "--device", "cpu"]) == 0
    assert "loaded the finished run" in capsys.readouterr().out
    assert snapshot(folder) == before
    assert main(["train", "four-circles", "--steps", "10", "--out", str(folder), "--device", "cpu"]) == 0
    assert snapshot(folder) == before


def circles(n, generator):
    return fk.data.four_circles(n, generator=generator)


def run_in(out, steps, sample_batch=circles, extend=False):
    fk.seed_everything(0)
    model = small_plane_model("f-nsf", dtype=torch.float32)
    x = fk.data.four_circles(300, seed=3)
    return experiment_runs.train_or_load(model, sample_batch, experiment_runs.train_config(steps, 32, 3e-3), out,
                                         evaluate=lambda m: (experiment_runs.nats(m, x), None),
                                         evaluation_key={"test": "v1"}, progress=False, extend=extend)


def test_an_interrupted_extension_resumes_to_the_uninterrupted_weights(tmp_path):
    flat = lambda model: torch.cat([p.detach().flatten() for p in model.parameters()])  # noqa: E731
    run_in(tmp_path / "straight", 10)
    straight = run_in(tmp_path / "straight", 20, extend=True)
    assert straight.status == "extended"

    run_in(tmp_path / "cut", 10)
    calls = {"n": 0}

    def crashing(n, generator):  # train_config(20, ...) checkpoints every 4 steps; dies at step 17
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return circles(n, generator)

    with pytest.raises(KeyboardInterrupt):
        run_in(tmp_path / "cut", 20, sample_batch=crashing, extend=True)
    stored = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert stored["finished"] is False and stored["training"]["extensions"][0]["finished"] is False
    assert read_checkpoint(tmp_path / "cut")["trainer"]["step"] == 16
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["checkpoint.pt", "metrics.json"]
    with pytest.raises(folders.RunMismatch, match="its steps are 20, this asks for 10"):
        run_in(tmp_path / "cut", 10)
    resumed = run_in(tmp_path / "cut", 20, extend=True)
    assert resumed.status == "resumed"
    assert torch.equal(flat(resumed.model), flat(straight.model))
    assert resumed.metrics["training"]["extensions"][0]["finished"] is True
    assert resumed.metrics["evaluation"] == straight.metrics["evaluation"]


def test_an_unfinished_run_is_not_extended(tmp_path):
    run_in(tmp_path / "run", 10)
    payload = read_checkpoint(tmp_path / "run")
    payload["trainer"]["step"] = 8  # as if stopped at step 8 of 10
    torch.save(payload, tmp_path / "run" / "checkpoint.pt")
    before = snapshot(tmp_path / "run")
    with pytest.raises(folders.RunMismatch, match="stopped at step 8 of 10.*finish it first"):
        run_in(tmp_path / "run", 20, extend=True)
    assert snapshot(tmp_path / "run") == before


# --------------------------------------------------------------------------------------------
# reading: the format, legacy folders, forward-compatible settings
# --------------------------------------------------------------------------------------------

def test_a_legacy_file_describes_the_same_run_as_the_current_one(tmp_path):
    run_in(tmp_path / "run", 4)
    current = folders.describe_run(tmp_path / "run")
    assert not current.legacy and current.metrics["format"] == folders.FORMAT
    raw = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("format", "experiment", "result"):
        raw.pop(key)
    raw["training"].pop("extensions")
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(raw))
    legacy = folders.describe_run(tmp_path / "run")
    assert legacy.legacy and dataclasses.replace(legacy, legacy=False) == current  # every field but the flag
    assert legacy.metrics == current.metrics
    assert (legacy.experiment, legacy.model, legacy.steps, legacy.finished) == ("four-circles", "f-nsf", 4, True)
    assert run_in(tmp_path / "run", 4).status == "loaded"  # loading rewrites it in the current format
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["format"] == folders.FORMAT


def test_a_legacy_four_circles_folder_is_read_evaluated_and_refused_like_a_current_one(circles_run, tmp_path, capsys):
    import shutil

    folder = tmp_path / "legacy"
    shutil.copytree(circles_run, folder)
    current = json.loads((folder / "metrics.json").read_text())
    numbers = current["evaluation"]
    flat = {**numbers, "train_seconds": current["training"]["train_seconds"], "steps": 6, "model": "f-nsf",
            "preset": "quick", "experiment": "four-circles", "train_config": current["training"]["config"],
            "parameters": current["parameters"]}  # what `funnelkit train four-circles` wrote before format 1
    (folder / "metrics.json").write_text(json.dumps(flat))
    description = folders.describe_run(folder)
    assert (description.experiment, description.model, description.preset, description.steps) == \
        ("four-circles", "f-nsf", "quick", 6)
    assert description.evaluation == numbers and description.legacy
    assert main(["eval", str(folder), "--from-metrics"]) == 0
    assert f"model: {numbers['model_ll']:.4f}" in capsys.readouterr().out
    before = snapshot(folder)
    assert main(["train", "four-circles", "--steps", "6", "--seed", "2", "--out", str(folder), "--device", "cpu"]) == 2
    assert "its seed is 0, this asks for 2" in error_line(capsys)
    assert snapshot(folder) == before


def test_a_stored_config_without_a_newer_field_counts_as_its_default(tmp_path):
    run_in(tmp_path / "run", 4)
    payload = read_checkpoint(tmp_path / "run")
    for name in ("amp", "keep_best", "eta_min"):  # as written before these fields existed
        payload["trainer"]["config"].pop(name, None)
    payload["trainer"]["config"]["retired_setting"] = 3  # a field this version does not know: ignored
    torch.save(payload, tmp_path / "run" / "checkpoint.pt")
    assert run_in(tmp_path / "run", 4).status == "loaded"
    payload["trainer"]["config"]["grad_clip_norm"] = 1.0
    torch.save(payload, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(folders.RunMismatch, match="its training setting grad_clip_norm is 1.0, this asks for 5.0"):
        run_in(tmp_path / "run", 4)


def test_a_newer_format_and_a_broken_file_are_refused_clearly(tmp_path):
    run_in(tmp_path / "run", 4)
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="format 99, newer than this funnelkit reads"):
        folders.describe_run(tmp_path / "run")
    (tmp_path / "run" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json is not readable JSON"):
        folders.read_metrics(tmp_path / "run")


def test_the_shipped_runs_are_in_the_current_format_and_say_which_result_made_them():
    from funnelkit.experiments.shipped import SHIPPED_RUNS

    made_by = {"table1-quick": "table1", "table1-classroom": "table1", "images-quick": "table2",
               "table4-quick": "table4", "table4-classroom": "table4", "images-classroom": None,
               "four-circles-quick": None}  # made by `funnelkit train images|four-circles`, no result entry
    shipped = sorted(p.parent for p in SHIPPED_RUNS.glob("*/*/checkpoint.pt"))
    assert shipped, "the tracked shipped runs in data/runs are missing"
    for folder in shipped:
        raw = json.loads((folder / "metrics.json").read_text())
        assert raw["format"] == folders.FORMAT and list(raw)[0] == "format"
        description = folders.describe_run(folder, read_checkpoint(folder))
        assert description.result == made_by[folder.parent.name]
        assert description.finished and description.step == description.steps == raw["training"]["steps"]
        assert description.experiment == folders.EXPERIMENT_OF_BUILDER[description.builder]
