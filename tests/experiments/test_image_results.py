"""Table 2, Fig. 3, Table 3 and Fig. 4: one tiny quick run of the three image models, shared by
all four entries (the later ones load it), with the MNIST stand-in labelled as one; Table 3
without weights says so, with unofficial weights says the numbers are a pipeline check; the
paper preset without CIFAR-10 names the file and writes nothing."""

import json
import warnings

import pytest
import torch

from funnelkit.data.cache import DatasetNotFoundError
from funnelkit.data.images import OfflineDataWarning
from funnelkit.experiments import fig4, table2, table3
from funnelkit.fidelity import InceptionWeightsMissing

from .conftest import files_in

TINY = dict(steps=2, vae_steps=3, batch_size=8, held_out=24, validation_max=16, fig3_samples=4,
            model_overrides={"hidden_channels": 4, "steps_per_level": 1, "num_res_blocks": 1,
                             "funnel_hidden_features": 8, "vae_width": 8, "vae_depth": 1})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Table 2's quick run, once: the output folder and the runs folder the others reuse."""
    root = tmp_path_factory.mktemp("images")
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("FUNNELKIT_CACHE", str(root / "cache"))  # only the kit's offline data is found
        warnings.simplefilter("ignore", OfflineDataWarning)
        result = table2.reproduce_table2("quick", out=root / "out", runs=root / "runs", progress=False, **TINY)
    return root, result


def test_table2_writes_the_paper_column_beside_the_labelled_stand_in(shared):
    root, result = shared
    assert files_in(root / "out") == ["fig3.png", "table2.json", "table2.md"]
    stored = json.loads((root / "out" / "table2.json").read_text())
    assert stored["stand_in"] is True and stored["paper_columns"] == {"mnist-5": "cifar10-5"}
    assert stored["data"][0]["name"] == "MNIST first 10k of train (offline subset)"
    rows = stored["ours"]["mnist-5"]
    assert [rows[m]["latent_dim"] for m in ("nsf", "f-nsf", "vae")] == [784, 16, 16]
    assert rows["vae"]["exact"] is False and all(0 < rows[m]["bpd"] < 12 for m in rows)
    assert (rows["vae"]["steps"], rows["nsf"]["steps"]) == (3, 2)  # the VAE's own number of steps
    # the stored per-image bits/dim are the table's mean (two ways: stored arrays and the table)
    per_image = torch.load(rows["f-nsf"]["run"] + "/evaluation.pt", weights_only=True)["bpd"]
    assert len(per_image) == 24 and per_image.mean().item() == pytest.approx(rows["f-nsf"]["bpd"])
    markdown = (root / "out" / "table2.md").read_text()
    assert "STAND-IN" in markdown and "| F-NSF | 1.71 | 192 |" in markdown and "| GLOW* | 1.67 |" in markdown


def test_fig3_table3_and_fig4_reuse_the_table2_runs(shared, tmp_path):
    root, _ = shared
    out = tmp_path / "out"
    fig3 = table2.reproduce_fig3("quick", out=out, runs=root / "runs", progress=False, **TINY)
    assert fig3["stand_in"] and (out / "fig3.png").read_bytes()[:4] == b"\x89PNG"

    result = table3.reproduce_table3("quick", out=out, runs=root / "runs", progress=False, samples=12, grid_samples=4,
                                     **TINY)
    assert {row["status"] for row in result["ours"].values()} == {"loaded"}
    assert all(row["inception_score"] is None and row["note"] == table3.NOT_COMPUTED for row in result["ours"].values())
    markdown = (out / "table3.md").read_text()
    assert "Not computed: no Inception weights" in markdown and "| F-NSF | 4.95 | 45.52 |" in markdown
    assert "| PIXELCNN* | 4.60 | 65.93 |" in markdown and "| VAE | 1.00 | 745 |" in markdown
    for name in ("nsf", "f-nsf", "vae"):
        assert (out / f"table3_{name}.png").stat().st_size > 0
    # without Inception weights the kit's digit metric still scores the 12 samples against the 24 held-out digits
    digit_rows = {name: row["digit_metric"] for name, row in result["ours"].items()}
    assert all(m["n"] == 12 and m["n_reference"] == 24 and m["fid"] > 0 and 1 <= m["is"] <= 10
               for m in digit_rows.values())
    section = markdown.split("## The kit's digit metric (not Inception)")[1]
    assert f"| F-NSF | {digit_rows['f-nsf']['fid']:,.1f} |" in section and "Inception numbers above" in section

    result = fig4.reproduce_fig4("quick", out=out, runs=root / "runs", progress=False, samples_per_panel=4,
                                 digit_samples=12, **TINY)
    assert result["temperatures"] == [0.5, 0.75, 1.0] and list(result["models"]) == ["f-nsf", "vae", "nsf"]
    assert {m["status"] for m in result["models"].values()} == {"loaded"}
    assert (out / "fig4.png").read_bytes()[:4] == b"\x89PNG" and "stand-in" in (out / "fig4.md").read_text().lower()
    # every panel scored; at T = 1 Fig. 4 draws Table 3's 12 samples (same seed), so the same digit FID two ways
    for name, model in result["models"].items():
        assert [row["temperature"] for row in model["digit_metric"]] == [0.5, 0.75, 1.0]
        assert model["digit_metric"][-1]["fid"] == pytest.approx(digit_rows[name]["fid"], rel=1e-9)
    assert "## The kit's digit metric at each temperature (not Inception)" in (out / "fig4.md").read_text()


def test_table3_with_weights_labels_unofficial_ones_a_pipeline_check(shared, tmp_path, monkeypatch):
    root, _ = shared
    weights = tmp_path / "not-inception.pth"
    weights.write_bytes(b"random weights")
    seen = {}

    def fake_scores(generated, reference, feature_extractor_weights_path, device):
        seen.update(shape=tuple(generated.shape), reference=tuple(reference.shape), path=feature_extractor_weights_path)
        return {"inception_score": 1.5, "inception_score_std": 0.1, "fid": 300.0}

    monkeypatch.setattr(table3, "fid_and_inception_score", fake_scores)
    result = table3.reproduce_table3("quick", out=tmp_path / "out", runs=root / "runs", progress=False, samples=10,
                                     inception_weights=weights, **TINY)
    assert seen["shape"] == (10, 3, 28, 28) and seen["reference"] == (24, 3, 28, 28)  # grey repeated to RGB
    assert result["inception_weights"]["official"] is False
    assert result["ours"]["f-nsf"]["fid"] == 300.0 and "PIPELINE CHECK ONLY" in result["ours"]["f-nsf"]["note"]
    assert "Pipeline check only" in (tmp_path / "out" / "table3.md").read_text()


def test_missing_weights_or_data_raise_before_anything_is_written(tmp_path):
    with pytest.raises(InceptionWeightsMissing, match="no weights file"):
        table3.reproduce_table3("quick", out=tmp_path / "out", runs=tmp_path / "runs",
                                inception_weights=tmp_path / "absent.pth", progress=False)
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        table2.reproduce_table2("paper", out=tmp_path / "out", runs=tmp_path / "runs", root=tmp_path / "images",
                                progress=False)
    assert files_in(tmp_path) == []


def test_a_missing_digit_classifier_stops_table3_and_fig4_before_training(tmp_path, monkeypatch):
    from funnelkit.digits import classifier

    monkeypatch.setattr(classifier, "CLASSIFIER_PATH", tmp_path / "absent.pt")
    for reproduce in (table3.reproduce_table3, fig4.reproduce_fig4):
        with pytest.raises(FileNotFoundError, match="absent.pt is missing.*funnelkit digits train"):
            reproduce("quick", out=tmp_path / "out", runs=tmp_path / "runs", progress=False, **TINY)
    assert files_in(tmp_path) == []


def test_samples_are_seeded_and_leave_the_global_random_state_alone():
    import funnelkit as fk

    model = fk.models.image_model("f-nsf", "mnist", 5, preset="quick", **TINY["model_overrides"])
    state = torch.get_rng_state()
    first = table2.samples_uint8(model, 5, 5, temperature=0.75, seed=3, batch_size=2)  # three batches
    assert torch.equal(torch.get_rng_state(), state)
    assert first.dtype == torch.uint8 and first.shape == (5, 1, 28, 28)
    assert torch.equal(table2.samples_uint8(model, 5, 5, temperature=0.75, seed=3, batch_size=2), first)
    assert not torch.equal(table2.samples_uint8(model, 5, 5, temperature=0.75, seed=4, batch_size=2), first)
