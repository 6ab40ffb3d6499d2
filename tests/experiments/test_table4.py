"""Table 4's entry: a smoke run on the offline MNIST subset and the Fashion-MNIST test set, whose
ratio, AUROC and verdict are recomputed here from the stored per-image bits/dim; the verdict's
three outcomes on made-up rows, and its decision alone, apart from its sentences; the paper preset
refusing to run without the full MNIST. Table 8's parameter counts beside the paper's."""

import json

import pytest
import torch

from funnelkit.data.cache import DatasetNotFoundError
from funnelkit.experiments import table4, table8
from funnelkit.metrics import auroc

from .conftest import files_in


def test_quick_smoke_run_scores_both_sets_and_computes_its_verdict(tmp_path):
    result = table4.reproduce_table4("quick", out=tmp_path / "out", runs=tmp_path / "runs", progress=False, steps=2,
                                     vae_steps=3, batch_size=4, held_out=16, out_max=20, validation_max=8)
    assert files_in(tmp_path / "out") == ["table4.json", "table4.md", "table4_roc.png"]
    stored = json.loads((tmp_path / "out" / "table4.json").read_text())
    names = [r["name"] for r in stored["data"]]
    assert names == ["MNIST first 10k of train (offline subset)", "Fashion-MNIST test"]
    assert [r["stand_in"] for r in stored["data"]] == [True, False]
    assert list(stored["ours"]) == ["vae-4", "vae-16", "f-nsf-4", "f-nsf-16", "f-mlp-4", "f-mlp-16", "nsf"]
    assert stored["ours"]["vae-4"]["steps"] == 3 and stored["ours"]["nsf"]["steps"] == 2
    assert stored["ours"]["nsf"]["latent_dim"] == 784 and stored["ours"]["f-nsf-4"]["latent_dim"] == 4
    for key, row in stored["ours"].items():
        arrays = torch.load(f"{row['run']}/evaluation.pt", weights_only=True)
        bpd_in, bpd_out = arrays["bpd_in"], arrays["bpd_out"]
        assert (len(bpd_in), len(bpd_out)) == (16, 20)
        assert row["ratio"] == pytest.approx(bpd_out.mean().item() / bpd_in.mean().item())
        assert row["ratio"] == pytest.approx(row["f_mnist"] / row["mnist"])
        assert row["auroc"] == pytest.approx(auroc(bpd_in, bpd_out))
    # the verdict is recomputed from the stored numbers, and says what they say
    assert stored["verdict"] == json.loads(json.dumps(table4.verdict(stored["ours"]))) == result["verdict"]
    markdown = (tmp_path / "out" / "table4.md").read_text()
    assert stored["verdict"]["sentence"] in markdown and "19.36" in markdown and "STAND-IN" in markdown
    assert "holds in the paper's own numbers" in markdown


def test_the_verdict_has_three_outcomes():
    def rows(f_nsf, f_mlp, nsf, vae):
        return {"f-nsf-4": {"model": "f-nsf", "ratio": f_nsf}, "f-mlp-4": {"model": "f-mlp", "ratio": f_mlp},
                "nsf": {"model": "nsf", "ratio": nsf}, "vae-4": {"model": "vae", "ratio": vae}}

    assert table4.verdict(rows(5.0, 4.0, 3.0, 1.5))["holds"] is True
    partly = table4.verdict(rows(5.0, 2.0, 3.0, 1.5))
    assert partly["holds"] == "partly" and "F-MLP (latent 4)" in partly["sentence"].split("but")[1]
    assert table4.verdict(rows(2.0, 1.2, 3.0, 1.5))["holds"] is False
    errors = rows(5.0, 4.0, 3.0, 1.5)
    for row, error in zip(errors.values(), (0.1, 0.1, 0.1, 0.1)):
        row["ratio_2se"] = error
    assert "beyond two standard errors" in table4.verdict(errors)["sentence"]
    errors["f-mlp-4"]["ratio_2se"] = 2.0
    assert "not beyond two standard errors" in table4.verdict(errors)["sentence"]


def test_the_finding_is_decided_from_the_numbers_alone_without_sentences():
    rows = {"f-nsf-4": {"model": "f-nsf", "ratio": 5.0, "ratio_2se": 0.5, "auroc": 0.99},
            "f-mlp-4": {"model": "f-mlp", "ratio": 2.0, "ratio_2se": 0.1, "auroc": 0.70},
            "nsf": {"model": "nsf", "ratio": 3.0, "ratio_2se": 0.2, "auroc": 0.90},
            "vae-4": {"model": "vae", "ratio": 1.5, "ratio_2se": 0.1, "auroc": 0.60}}
    decided = table4.decide_finding(rows)
    assert json.loads(json.dumps(decided)) == decided  # plain values: no sentence, nothing to format
    assert not any(isinstance(v, str) and " " in v for v in decided.values())
    assert decided["holds"] == "partly" and decided["above"] == ["f-nsf-4"] and decided["below"] == ["f-mlp-4"]
    assert (decided["best_baseline"], decided["best_baseline_ratio"]) == ("nsf", 3.0)
    assert (decided["worst_funnel"], decided["best_funnel"]) == ("f-mlp-4", "f-nsf-4")
    assert decided["beyond_two_se"] is False  # F-MLP's 2.0 - 0.1 is below NSF's 3.0 + 0.2
    assert decided["auroc"] == {"better": 1, "funnels": 2, "best_baseline": 0.90}
    assert decided["f_mlp_vs_vae"] == [[4, 2.0, 1.5]]
    rows["f-mlp-4"]["ratio"] = 3.5  # now above 3.0 + 0.2 by more than its own 0.1: holds, beyond two s.e.
    assert table4.decide_finding(rows)["holds"] is True and table4.decide_finding(rows)["beyond_two_se"] is True
    del rows["nsf"], rows["vae-4"]
    assert table4.decide_finding(rows) == {"holds": None}
    # the sentences are written from the decision alone, and are what verdict() stores
    assert table4.write_verdict(table4.decide_finding(rows)) == table4.verdict(rows)


def test_paper_preset_without_the_full_mnist_names_the_file_and_writes_nothing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        table4.reproduce_table4("paper", out=tmp_path / "out", runs=tmp_path / "runs", root=tmp_path / "images",
                                progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_table8_counts_the_paper_models_beside_the_paper(tmp_path):
    result = table8.reproduce_table8("quick", out=tmp_path, models=(("vae", 16), ("f-mlp", 4), ("nsf", None)))
    assert files_in(tmp_path) == ["table8.json", "table8.md"]
    vae = result["ours"]["vae-16"]
    assert vae["paper"] == 1_879_857 and vae["relative_difference"] == pytest.approx((vae["parameters"] - 1_879_857) / 1_879_857)
    assert vae["parameters"] > vae["quick_parameters"] > 0  # paper-preset models counted, quick ones beside
    assert abs(result["ours"]["f-mlp-4"]["relative_difference"]) < 0.05
    assert result["ours"]["nsf"]["paper"] == 4_724_430 and result["ours"]["nsf"]["latent_dim"] == 784
    markdown = (tmp_path / "table8.md").read_text()
    assert "| VAE | 16 | 1,879,857 |" in markdown and "| NSF | 784 | 4,724,430 | 4,724,430 | +0.0% |" in markdown
