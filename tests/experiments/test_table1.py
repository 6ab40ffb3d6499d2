"""Table 1's entry: the stand-in's exact density, a smoke run that writes the paper's numbers beside
ours with the stand-in labelled, the speed verdicts computed from the times (decided apart from
their sentences), and the paper preset refusing to run without the MAF files (naming the file,
writing nothing)."""

import json
import math
from pathlib import Path

import pytest
import torch

import funnelkit as fk
from funnelkit.data.cache import DatasetNotFoundError
from funnelkit.experiments import table1

from .conftest import files_in


def test_the_stand_in_density_is_normalised_and_matches_its_samples():
    standin = table1.StandIn("power", (4000, 10, 2000), dim=2)
    # a float64 grid integral of exp(log p) over the standardised plane
    edge = torch.linspace(-6, 6, 601, dtype=torch.float64)
    xx, yy = torch.meshgrid(edge, edge, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], 1)
    weights = standin.log_prob(points).exp() * (edge[1] - edge[0]) ** 2
    assert weights.sum().item() == pytest.approx(1.0, abs=2e-3)
    # the density's mean and variance are the samples' (standardised: about 0 and 1, up to sampling error)
    mean = (weights[:, None] * points).sum(0)
    variance = (weights[:, None] * (points - mean) ** 2).sum(0)
    assert torch.allclose(mean, torch.zeros(2, dtype=torch.float64), atol=0.06)
    assert torch.allclose(variance, torch.ones(2, dtype=torch.float64), atol=0.1)
    # the training rows are standardised, and the splits are float32 of the asked sizes
    train = standin.splits["train"]
    assert train.dtype == torch.float32 and [len(standin.splits[s]) for s in ("train", "val", "test")] == [4000, 10, 2000]
    assert torch.allclose(train.mean(0), torch.zeros(2), atol=1e-5) and torch.allclose(train.std(0), torch.ones(2), atol=1e-5)
    # the same seed gives the same data; the 6-D POWER stand-in has its dimension
    assert torch.equal(table1.StandIn("power", (50, 5, 5), dim=2).splits["test"],
                       table1.StandIn("power", (50, 5, 5), dim=2).splits["test"])
    assert table1.StandIn("power", (50, 5, 5)).splits["train"].shape == (50, 6)


def test_quick_smoke_run_writes_both_columns_and_labels_the_stand_in(tmp_path):
    result = table1.reproduce_table1(
        "quick", out=tmp_path / "out", runs=tmp_path / "runs", progress=False, root=tmp_path / "no-maf",
        datasets=("power",), models=("nsf", "f-nsf", "vae", "f-mlp"), steps=3, standin_sizes=(300, 50, 80),
        model_overrides={"flow_steps": 2, "hidden_features": 8, "vae_width": 8, "funnel_level": 0},
    )
    assert files_in(tmp_path / "out") == ["table1.json", "table1.md"]
    stored = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert stored["stand_in"] is True and stored["data"][0]["stand_in"] is True
    assert "power/data.npy" in stored["data"][0]["source"]
    assert stored["paper"]["f-nsf"]["power"] == [0.62, 0.02]
    rows = stored["ours"]["power"]
    assert rows["f-nsf"]["latent_dim"] == 4 and rows["nsf"]["latent_dim"] == 6 and rows["vae"]["exact"] is False
    assert all(math.isfinite(r["ll"]) and r["ll_2se"] > 0 and r["seconds_per_step"] > 0 for r in rows.values())
    # the stand-in's truth is the best any model can do, and 3 steps are far from it
    assert all(r["ll"] < stored["true_density"]["power"]["ll"] for r in rows.values())
    markdown = (tmp_path / "out" / "table1.md").read_text()
    assert "STAND-IN" in markdown and "**0.63 +- 0.01**" in markdown and "true density (stand-in)" in markdown
    # the speed verdict is computed from the measured times
    ratio = rows["nsf"]["seconds_per_step"] / rows["f-mlp"]["seconds_per_step"]
    assert stored["speed"]["per_dataset"]["power"]["flow_over_f_mlp"]["nsf"] == pytest.approx(ratio)
    assert any("F-MLP vs the flows" in v for v in result["speed"]["verdicts"])
    # each model tested is its best-validation one (as NSF's and the authors' uci.py), and its step is recorded
    assert "best step" in markdown and "best validation loss" in markdown
    for name, row in rows.items():
        history = torch.load(Path(row["run"]) / "checkpoint.pt", weights_only=True)["trainer"]["history"]
        assert history["eval_step"] == [1, 2, 3]  # 3 steps: a validation loss at every step
        lowest = min(range(3), key=history["eval_loss"].__getitem__)
        assert row["best_step"] == history["eval_step"][lowest]
        assert row["best_validation_nll"] == history["eval_loss"][lowest]
    standin = table1.StandIn("power", (300, 50, 80))
    nsf = fk.load(rows["nsf"]["run"]).eval()
    with torch.no_grad():  # the weights tested give the best validation loss when computed afresh
        assert -nsf.log_prob(standin.splits["val"]).mean().item() == pytest.approx(rows["nsf"]["best_validation_nll"],
                                                                                   abs=1e-5)


def test_speed_verdicts_follow_the_numbers():
    def rows(nsf, f_nsf, f_mlp, vae):
        return {"power": {"nsf": {"seconds_per_step": nsf}, "f-nsf": {"seconds_per_step": f_nsf},
                          "f-mlp": {"seconds_per_step": f_mlp}, "vae": {"seconds_per_step": vae}}}

    fast = table1.speed_summary(rows(0.6, 0.66, 0.1, 0.1))["verdicts"]
    assert "faster than every flow" in fast[0] and "is reached" in fast[0]
    assert "similar" in fast[1] and "holds here" in fast[2]
    assert "takes 1.00 times the VAE's" in fast[1]  # one ratio is said once, not as a range "1.00 to 1.00"
    slow = table1.speed_summary(rows(0.1, 0.3, 0.2, 0.01))["verdicts"]
    assert "holds only in part" in slow[0] and "not within a factor of 2" in slow[1] and "does not hold" in slow[2]


def test_the_speed_claims_are_decided_from_the_step_times_alone_without_sentences():
    ours = {"power": {"nsf": {"seconds_per_step": 0.6}, "f-nsf": {"seconds_per_step": 0.9},
                      "f-mlp": {"seconds_per_step": 0.1}, "vae": {"seconds_per_step": 0.4}},
            "gas": {"nsf": {"seconds_per_step": 0.05}, "f-mlp": {"seconds_per_step": 0.1}},
            "hepmass": {"nsf": {"seconds_per_step": 1.0}}}  # no F-MLP: nothing to compare with
    found = table1.speed_findings(ours)
    assert json.loads(json.dumps(found)) == found  # plain values, no sentence
    assert list(found["per_dataset"]) == ["power", "gas"]
    # three (flow, dataset) pairs: power's NSF 6x and F-NSF 9x the F-MLP's step, gas's NSF half of it
    speed = found["f_mlp_speed"]
    assert speed["pairs"] == 2 + 1 and speed["faster"] == 2 and speed["holds"] == "partly"
    assert speed["low"] == pytest.approx(0.5) and speed["high"] == pytest.approx(9.0)
    assert speed["reached"] is True  # 9x reaches the paper's "up to 6 times faster"
    assert found["f_mlp_vs_vae"] == {"low": 0.25, "high": 0.25, "similar": False}  # 0.1 / 0.4: outside [1/2, 2]
    slowdown = found["funnel_slowdown"]
    assert slowdown["low"] == slowdown["high"] == pytest.approx(1.5) and slowdown["holds"] is False  # above 1.2
    assert table1.speed_findings({"power": {"nsf": {"seconds_per_step": 1.0}}}) == {
        "per_dataset": {}, "f_mlp_speed": None, "f_mlp_vs_vae": None, "funnel_slowdown": None}
    # the sentences are written from the findings alone, and are what speed_summary() stores
    assert table1.speed_sentences(found) == table1.speed_summary(ours)["verdicts"]


def test_paper_preset_without_the_maf_files_names_the_file_and_writes_nothing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="power/data.npy") as error:
        table1.reproduce_table1("paper", out=tmp_path / "out", runs=tmp_path / "runs", root=tmp_path / "no-maf",
                                progress=False)
    assert "zenodo.org" in str(error.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_model_steps_give_named_models_their_own_steps_and_steps_alone_overrides_them(tmp_path):
    result = table1.reproduce_table1(
        "classroom", out=tmp_path / "out", runs=tmp_path / "runs", progress=False, datasets=("power",),
        models=("glow", "nsf"), steps=2, model_steps={"glow": 4}, standin_sizes=(200, 20, 40),
        model_overrides={"flow_steps": 2, "hidden_features": 8, "funnel_level": 0})
    rows = result["ours"]["power"]
    assert (rows["glow"]["steps"], rows["nsf"]["steps"]) == (4, 2)
    assert "-s4-glow" in Path(rows["glow"]["run"]).name and "-s2-nsf" in Path(rows["nsf"]["run"]).name
    for name, steps in (("glow", 4), ("nsf", 2)):  # each run trained its own number of steps
        assert torch.load(Path(rows[name]["run"]) / "checkpoint.pt", weights_only=True)["trainer"]["step"] == steps
    # the preset's own: every model CLASSROOM_STEPS but GLOW and F-GLOW; --steps alone sets every model's
    preset = table1.PRESETS["classroom"]
    assert preset.steps == table1.CLASSROOM_STEPS and preset.model_steps == table1.CLASSROOM_GLOW_STEPS
    from funnelkit.experiments.runs import choose_settings
    assert choose_settings(table1.PRESETS, "classroom", {"steps": 7}, "table1").model_steps == {}
