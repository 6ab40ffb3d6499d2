"""``funnelkit train|eval|sample|models`` for the tabular, image and anomaly experiments, run
in-process with a few training steps on the kit's offline data (and on a POWER file in the MAF
archive's raw format, made here).

Oracles: the test numbers ``train`` stores are recomputed by ``eval`` and, a second way, from
the library (the held-out images or test rows scored directly); the anomaly ratio is the ratio
of the stored means; the image grid has the size N samples must give.
"""

import json
import re
import warnings

import pytest
import torch

from funnelkit.checkpoints import load
from funnelkit.cli.main import main
from funnelkit.data.images import OfflineDataWarning, image_dataset
from funnelkit.experiments import table2
from funnelkit.experiments.runs import held_out_split, per_example_bpd
from funnelkit.models.plane import plane_model

from .data.test_tabular import maf_sizes, write_power


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """An empty cache (only the kit's shipped data is found) and the run's folder as the cwd."""
    monkeypatch.setenv("FUNNELKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        yield


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def numbers(text):
    """Every ``mean +- error`` pair printed, as floats."""
    return [(float(a), float(b)) for a, b in re.findall(r"(-?\d+\.\d+) \+- (\d+\.\d+)", text)]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """``funnelkit train images --dataset mnist --model f-nsf --preset quick --steps 2``, once."""
    folder = tmp_path_factory.mktemp("images")
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)
        patch.setenv("FUNNELKIT_CACHE", str(folder / "cache"))
        code = main(["train", "images", "--dataset", "mnist", "--model", "f-nsf", "--preset", "quick",
                     "--steps", "2", "--out", str(folder / "run"), "--device", "cpu"])
    assert code == 0
    return folder / "run"


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------

def test_train_images_writes_a_labelled_run_whose_numbers_the_library_reproduces(image_run):
    assert files_in(image_run) == ["checkpoint.pt", "evaluation.pt", "metrics.json"]
    metrics = json.loads((image_run / "metrics.json").read_text())
    assert metrics["model"]["builder"] == "image" and metrics["model"]["bits"] == 5
    assert metrics["latent_dim"] == 16 and metrics["exact"] is True
    assert metrics["training"]["steps"] == 2 and metrics["training"]["config"]["batch_size"] == 64
    describe = metrics["describe"]
    assert describe["stand_in"] is True and "offline subset" in describe["data"][0]["name"]
    assert describe["command"].startswith("funnelkit train images --model f-nsf --preset quick --dataset mnist")
    # the stored bits/dim, a second way: the 1,000 held-out images scored by the library
    images = image_dataset("mnist", "train").images
    _, held_out = held_out_split(len(images), 1000, table2.SPLIT_SEED)
    values = per_example_bpd(load(image_run), images[held_out], 5)
    assert metrics["evaluation"]["n"] == 1000
    assert metrics["evaluation"]["bpd"] == pytest.approx(values.mean().item(), abs=1e-9)
    stored = torch.load(image_run / "evaluation.pt", weights_only=True)["bpd"]
    assert torch.allclose(stored, values)


def test_eval_recomputes_what_train_stored(image_run, capsys):
    stored = json.loads((image_run / "metrics.json").read_text())["evaluation"]
    assert main(["eval", str(image_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "recomputed on the test data" in out and "1,000 images" in out and "STAND-IN" in out
    assert "34,315 parameters; latent size 16 of 784; log_prob is exact" in out
    (mean, error), = numbers(out)
    assert mean == pytest.approx(stored["bpd"], abs=1e-4) and error == pytest.approx(stored["bpd_2se"], abs=1e-4)
    assert main(["eval", str(image_run), "--from-metrics"]) == 0
    out = capsys.readouterr().out
    assert "read from metrics.json" in out and numbers(out) == [(round(stored["bpd"], 4), round(stored["bpd_2se"], 4))]
    assert main(["eval", str(image_run), "--n", "50", "--device", "cpu"]) == 0
    assert "(50 images" in capsys.readouterr().out


def test_sample_writes_a_grid_of_n_images(image_run, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main(["sample", str(image_run), "--temperature", "0.5", "--n", "10", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "10 samples" in capsys.readouterr().out
    with Image.open(out) as picture:  # 10 images, 4 per row (ceil sqrt 10): 4 x 3 tiles of 28 + 2 padding
        assert picture.mode == "L" and picture.size == (4 * 30 + 2, 3 * 30 + 2)


def _tiles(path, n, size=28, padding=2):
    """The ``n`` images of a grid PNG written by ``funnelkit sample`` (ceil(sqrt(n)) per row), as uint8 tensors."""
    import math

    import numpy as np
    from PIL import Image

    with Image.open(path) as picture:
        pixels = torch.from_numpy(np.array(picture))
    columns = math.ceil(math.sqrt(n))
    tops = [padding + (i // columns) * (size + padding) for i in range(n)]
    lefts = [padding + (i % columns) * (size + padding) for i in range(n)]
    return [pixels[top:top + size, left:left + size] for top, left in zip(tops, lefts)]


def test_sample_temper_mean_at_zero_draws_one_picture_and_base_keeps_the_decoder_noise(image_run, tmp_path, capsys):
    # T = 0 with the decoders' means: z = 0 and no noise anywhere, so every sample is the same picture;
    # with the paper's base-only tempering the funnel's decoder still draws noise, so they differ
    for temper, same in (("mean", True), ("base", False)):
        out = tmp_path / f"{temper}.png"
        assert main(["sample", str(image_run), "--temperature", "0", "--temper", temper, "--n", "4", "--out", str(out),
                     "--device", "cpu"]) == 0
        tiles = _tiles(out, 4)
        assert all(torch.equal(tiles[0], tile) for tile in tiles[1:]) is same, temper
    assert "temperature 0 (the base noise; decoder means)" in capsys.readouterr().out


def test_sample_temper_all_gives_the_librarys_draw_and_base_is_the_default(image_run, tmp_path, capsys):
    from funnelkit.app.gallery import sample_images

    model = load(image_run)
    for temper in ("all", "base"):
        out = tmp_path / f"{temper}.png"
        extra = ["--temper", temper] if temper != "base" else []  # base: the default, not given
        assert main(["sample", str(image_run), "--temperature", "0.5", "--n", "4", "--seed", "3", *extra,
                     "--out", str(out), "--device", "cpu"]) == 0
        expected = sample_images(model, 4, 0.5, 3, temper=temper)[:, 0]
        assert all(torch.equal(tile, image) for tile, image in zip(_tiles(out, 4), expected)), temper
    printed = capsys.readouterr().out
    assert "(the base and the decoders' noise)" in printed and "(the base noise only)" in printed
    assert not torch.equal(sample_images(model, 4, 0.5, 3, temper="all"), sample_images(model, 4, 0.5, 3))


@pytest.mark.parametrize("args, message", [
    (["--temper", "hot"], "--temper: unknown temper 'hot'; expected one of 'base', 'all', 'mean'"),
    (["--temper", "BASE"], "--temper: unknown temper 'BASE'"),
    (["--temperature", "-0.5"], "--temperature: temperature must be a finite number >= 0, got -0.5"),
    (["--temperature", "nan"], "--temperature: temperature must be a finite number >= 0, got nan"),
    (["--temperature", "inf", "--temper", "all"], "--temperature: temperature must be a finite number >= 0, got inf"),
])
def test_sample_refuses_an_unknown_temper_or_a_bad_temperature_and_writes_nothing(image_run, tmp_path, capsys,
                                                                                  args, message):
    from funnelkit.paths import shipped_checkpoint

    before = files_in(image_run)
    for run in (image_run, shipped_checkpoint("four-circles", "f-nsf", "quick")):  # an image run and four circles
        assert main(["sample", str(run), *args, "--out", str(tmp_path / "x.png"), "--device", "cpu"]) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
        assert files_in(tmp_path) == []
    assert files_in(image_run) == before


def test_train_again_loads_the_finished_run_and_other_settings_are_refused(image_run, capsys):
    before = (image_run / "checkpoint.pt").stat().st_mtime_ns
    args = ["train", "images", "--dataset", "mnist", "--preset", "quick", "--out", str(image_run)]
    assert main([*args, "--steps", "2"]) == 0
    assert "loaded the finished run (not trained again)" in capsys.readouterr().out
    assert (image_run / "checkpoint.pt").stat().st_mtime_ns == before
    assert main([*args, "--steps", "3"]) == 2
    assert "holds another run" in capsys.readouterr().err
    assert (image_run / "checkpoint.pt").stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------------
# anomaly
# --------------------------------------------------------------------------------------------

def test_train_anomaly_scores_both_sets_in_the_default_folder(tmp_path, capsys):
    assert main(["train", "anomaly", "--model", "vae", "--latent-size", "4", "--steps", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "anomaly-latent4-vae-quick-s3"
    assert files_in(run) == ["checkpoint.pt", "evaluation.pt", "metrics.json"]
    assert "a bound (the ELBO)" in out and "Fashion-MNIST (out of distribution, 10,000 images)" in out
    evaluation = json.loads((run / "metrics.json").read_text())["evaluation"]
    arrays = torch.load(run / "evaluation.pt", weights_only=True)
    assert (evaluation["n_in"], evaluation["n_out"]) == (1000, 10_000) == (len(arrays["bpd_in"]), len(arrays["bpd_out"]))
    assert evaluation["ratio"] == pytest.approx(evaluation["f_mnist"] / evaluation["mnist"], rel=1e-12)
    assert evaluation["mnist"] == pytest.approx(arrays["bpd_in"].mean().item(), rel=1e-12)
    assert 0 <= evaluation["auroc"] <= 1
    assert main(["eval", str(run), "--device", "cpu"]) == 0  # the ELBO is seeded: recomputed, the same
    printed = numbers(capsys.readouterr().out)
    assert printed[:3] == [(round(evaluation[k], 4), round(evaluation[f"{k}_2se"], 4))
                           for k in ("mnist", "f_mnist", "ratio")]


# --------------------------------------------------------------------------------------------
# tabular
# --------------------------------------------------------------------------------------------

def test_train_tabular_without_the_maf_files_fails_and_writes_nothing(tmp_path, capsys):
    code = main(["train", "tabular", "--dataset", "power", "--root", str(tmp_path / "maf"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "power/data.npy" in error and "Traceback" not in error
    assert files_in(tmp_path) == []


def test_tabular_on_a_power_file_in_the_archive_format(tmp_path, capsys):
    from funnelkit.data.tabular import tabular

    root = tmp_path / "maf"
    write_power(root, n=2000)
    run = tmp_path / "power-run"
    assert main(["train", "tabular", "--model", "f-nsf", "--steps", "3", "--root", str(root), "--out", str(run),
                 "--device", "cpu"]) == 0
    assert "latent size 4 of 6" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["config"]["batch_size"] == 128  # the quick TabularConfig's
    assert metrics["training"]["config"]["keep_best"] is True  # tested at its best validation loss, as Table 1
    validation = torch.from_numpy(tabular("power", "val", root=root))
    with torch.no_grad():
        best = -load(run).log_prob(validation).double().mean().item()
    assert metrics["training"]["best"]["validation_loss"] == pytest.approx(best, abs=1e-4)
    test = torch.from_numpy(tabular("power", "test", root=root))
    assert metrics["evaluation"]["n"] == maf_sizes(2000)[2] == len(test)
    with torch.no_grad():
        direct = load(run).log_prob(test).double().mean().item()
    assert metrics["evaluation"]["ll"] == pytest.approx(direct, abs=1e-5)
    assert main(["eval", str(run), "--device", "cpu"]) == 0  # the root comes from metrics.json
    (mean, _), = numbers(capsys.readouterr().out)
    assert mean == pytest.approx(direct, abs=1e-4)
    picture = tmp_path / "corner.png"
    assert main(["sample", str(run), "--n", "500", "--out", str(picture), "--device", "cpu"]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# models, and bad input
# --------------------------------------------------------------------------------------------

def test_models_prints_the_table(capsys):
    assert main(["models", "--preset", "quick", "--family", "plane"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| family | model |") and len(lines) == 4
    for line, name in zip(lines[2:], ("f-nsf", "nsf")):
        count = f"{plane_model(name, preset='quick').num_parameters():,}"
        assert line.startswith(f"| plane | {name} | four circles | {count} |")


@pytest.mark.parametrize("args, message", [
    (["train", "five-circles"], "unknown experiment 'five-circles'"),
    (["train", "images", "--dataset", "svhn"], "unknown images dataset 'svhn'"),
    (["train", "images", "--model", "glow"], "unknown images model 'glow'; expected one of 'nsf', 'f-nsf', 'vae'"),
    (["train", "images", "--bits", "6"], "unknown bits 6"),
    (["train", "anomaly", "--latent-size", "5"], "unknown latent size 5"),
    (["train", "anomaly", "--dataset", "mnist"], "anomaly takes no --dataset"),
    (["train", "anomaly", "--model", "nsf", "--latent-size", "4"], "nsf keeps all 784 values"),
    (["train", "four-circles", "--root", "x"], "four-circles takes no --root"),
    (["train", "tabular", "--preset", "authors-code"], "unknown preset 'authors-code'"),
    (["train", "images", "--dataset", "fashion-mnist"], "train-images-idx3-ubyte"),  # no offline training split
    (["train", "images", "--dataset", "cifar10", "--preset", "paper"], "data_batch_1"),
    (["models", "--family", "planes"], "unknown model family 'planes'"),
])
def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, capsys, args, message):
    out = ["--out", str(tmp_path / "out")] if args[0] == "train" else []
    assert main([*args, *out]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert files_in(tmp_path) == []


def test_four_circles_eval_reads_its_stored_numbers(capsys):
    from funnelkit.paths import shipped_checkpoint

    path = shipped_checkpoint("four-circles", "f-nsf", "quick")
    assert main(["eval", str(path), "--from-metrics"]) == 0
    out = capsys.readouterr().out
    (model, _), (truth, _), (gap, _) = numbers(out)
    assert "100,000 points" in out and gap == pytest.approx(truth - model, abs=2e-4)
    assert main(["eval", str(path), "--root", "x"]) == 2
    assert "four-circles runs take no --root" in capsys.readouterr().err


def test_missing_and_corrupt_runs_fail_in_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "absent")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    error = capsys.readouterr().err
    assert "not a readable funnelkit checkpoint" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("builder, experiment_builder", [
    ("tabular_f_mlp", "tabular_model('f-mlp', DATASET)"), ("anomaly_f_mlp", "anomaly_model('f-mlp', LATENT_SIZE)")])
def test_a_directly_built_f_mlp_is_refused_naming_the_builder_to_use(tmp_path, capsys, builder, experiment_builder):
    from funnelkit.checkpoints import save_checkpoint
    from funnelkit.models.f_mlp import anomaly_f_mlp, tabular_f_mlp

    model = (tabular_f_mlp(3, 2, preset="quick") if builder == "tabular_f_mlp"
             else anomaly_f_mlp(2, image_shape=(1, 3, 3), preset="quick", widths=(8, 6, 4, 3)))
    save_checkpoint(tmp_path / "checkpoint.pt", model)
    assert load(tmp_path).config["builder"] == builder  # the checkpoint itself is fine
    for args in (["eval", str(tmp_path)], ["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]):
        assert main(args) == 2
        error = capsys.readouterr().err
        assert f"built directly by funnelkit.models.{builder}" in error and experiment_builder in error
        assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
