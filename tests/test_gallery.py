"""funnelkit.app.gallery: finding image runs, seeded sample grids (and what T tempers), PNG bytes,
comparisons, the digit metric under a grid.

Run folders are made here from small untrained models (the reader is checked against the format
``train_or_load`` writes by one test on the shipped runs, which fails when they are missing).
"""

import io
import json
import math
import os
import shutil
import struct
import zlib

from dataclasses import replace

import pytest
import torch

import funnelkit as fk
from funnelkit.app import gallery as g
from funnelkit.data.dequantize import to_uint8_images
from funnelkit.experiments.results import image_grid
from funnelkit.experiments.shipped import SHIPPED_RUNS
from funnelkit.experiments.table2 import samples_uint8


# -- run folders -------------------------------------------------------------------------------
def make_run(folder, model, bpd=2.0, seconds=12.5, steps=10, metrics=True):
    """A run folder as train_or_load writes one: checkpoint.pt and metrics.json."""
    folder.mkdir(parents=True, exist_ok=True)
    fk.save_checkpoint(folder / "checkpoint.pt", model, {"finished": True})
    if metrics:
        stored = {
            "finished": True, "model": dict(model.config), "parameters": model.num_parameters(),
            "latent_dim": model.latent_dim, "exact": bool(getattr(model, "exact", True)), "status": "trained",
            "training": {"steps": steps, "train_seconds": seconds},
            "evaluation_key": {"test": "MNIST test", "n": 100},
            "evaluation": {"bpd": bpd, "bpd_2se": 0.05, "n": 100},
            "describe": {"data": [{"name": "MNIST test", "source": "here", "stand_in": False}]},
        }
        (folder / "metrics.json").write_text(json.dumps(stored))
    return folder


@pytest.fixture(scope="module")
def models():
    fk.seed_everything(0)
    return {name: fk.models.image_model(name, "mnist", 5, preset="quick").eval() for name in ("f-nsf", "nsf", "vae")}


@pytest.fixture
def runs_root(tmp_path, models):
    """runs/images-quick/{f-nsf,nsf,vae} (MNIST 5-bit), a tabular run and a four-circles run."""
    root = tmp_path / "runs"
    for i, (name, model) in enumerate(models.items()):
        make_run(root / "images-quick" / f"mnist5-{name}", model, bpd=1.5 + i, seconds=10.0 + i)
    tabular = fk.models.tabular_model("nsf", "power", preset="quick")
    make_run(root / "table1-quick" / "power-nsf", tabular)
    (root / "four-circles-f-nsf-quick").mkdir()
    fk.save_checkpoint(root / "four-circles-f-nsf-quick" / "checkpoint.pt", fk.models.plane_model("f-nsf", preset="quick"))
    (root / "four-circles-f-nsf-quick" / "metrics.json").write_text(json.dumps({"model": "f-nsf", "experiment": "four-circles"}))
    return root


def test_finder_lists_image_runs_and_skips_others(runs_root):
    found = g.find_image_runs([runs_root])
    assert not found.problems
    assert [(r.model, r.dataset, r.bits) for r in found.runs] == [("f-nsf", "mnist", 5), ("nsf", "mnist", 5),
                                                                     ("vae", "mnist", 5)]
    assert [r.latent_dim for r in found.runs] == [16, 784, 16]
    assert [r.exact for r in found.runs] == [True, True, False]
    assert {r.source for r in found.runs} == {"your runs"} and {r.group for r in found.runs} == {"images-quick"}
    assert len({r.key for r in found.runs}) == 3
    assert found.get(found.runs[1].key) is found.runs[1]
    assert found.default().model == "f-nsf"
    vae = found.runs[2]
    assert vae.bpd == 3.5 and vae.bpd_2se == 0.05 and vae.training["steps"] == 10 and vae.data_dim == 784
    assert "bound" in vae.label and "VAE" in vae.label
    assert vae.remake == "funnelkit reproduce table2 --preset quick --runs runs"


def test_the_folders_come_from_the_environment(runs_root, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(g.RUNS_ENV, f"{empty}{os.pathsep}{runs_root}{os.pathsep}{tmp_path / 'absent'}")
    assert g.run_folders() == [empty, runs_root, tmp_path / "absent"]
    found = g.find_image_runs()
    assert len(found.runs) == 3 and found.folders == g.run_folders() and not found.problems
    monkeypatch.setenv(g.RUNS_ENV, str(tmp_path / "absent"))
    found = g.find_image_runs()
    assert found.runs == [] and found.problems == [] and found.default() is None
    monkeypatch.delenv(g.RUNS_ENV)
    assert g.run_folders() == [SHIPPED_RUNS, g.USER_RUNS]


def test_damaged_runs_are_reported_not_raised(runs_root):
    checkpoint = runs_root / "images-quick" / "mnist5-nsf" / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])  # truncated
    garbage = runs_root / "images-quick" / "mnist5-garbage"
    shutil.copytree(runs_root / "images-quick" / "mnist5-vae", garbage)
    (garbage / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    gone = runs_root / "images-quick" / "mnist5-gone"
    shutil.copytree(runs_root / "images-quick" / "mnist5-f-nsf", gone)
    (gone / "checkpoint.pt").unlink()
    found = g.find_image_runs([runs_root])
    assert [r.model for r in found.runs] == ["f-nsf", "vae"]
    assert len(found.problems) == 3
    text = " ".join(found.problems)
    assert str(checkpoint) in text and "damaged" in text
    assert str(garbage / "checkpoint.pt") in text
    assert f"{gone}: no checkpoint.pt" in text


def test_a_bit_flip_inside_the_archive_is_caught(runs_root):
    checkpoint = runs_root / "images-quick" / "mnist5-vae" / "checkpoint.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the weights: the zip member's CRC no longer matches
    checkpoint.write_bytes(bytes(data))
    found = g.find_image_runs([runs_root])
    assert [r.model for r in found.runs] == ["f-nsf", "nsf"]
    assert "checksum" in found.problems[0] or "damaged" in found.problems[0]


def test_a_copy_is_listed_once_and_a_run_without_metrics_is_read_from_its_checkpoint(runs_root, tmp_path, models):
    other = tmp_path / "other"
    shutil.copytree(runs_root / "images-quick", other / "images-quick")
    make_run(other / "lone-vae", models["vae"], metrics=False)
    found = g.find_image_runs([runs_root, other])
    assert len(found.runs) == 4
    lone = [r for r in found.runs if r.path.name == "lone-vae"][0]
    assert lone.model == "vae" and lone.bpd is None and lone.group == "" and lone.key == "other/lone-vae"
    assert lone.remake.startswith("funnelkit train images --model vae --dataset mnist --bits 5")


def test_the_shipped_runs_are_found_with_their_stored_numbers():
    folder = SHIPPED_RUNS / "images-quick"
    assert folder.is_dir(), "the tracked runs data/runs/images-quick are missing"
    found = g.find_image_runs([SHIPPED_RUNS])
    assert not found.problems
    assert all(r.source == "shipped" and r.key.startswith("shipped/") for r in found.runs)
    assert {r.group for r in found.runs} <= {"images-quick", "table4-quick", "images-classroom", "table4-classroom"}  # not table1-quick
    images = [r for r in found.runs if r.group == "images-quick"]
    assert sorted(r.model for r in images) == ["f-nsf", "nsf", "vae"]
    for run in images:
        stored = json.loads((run.path / "metrics.json").read_text())
        assert run.bpd == stored["evaluation"]["bpd"] and run.latent_dim == stored["latent_dim"]
        assert run.exact == (run.model != "vae") and run.bits == 5 and run.stand_in
    anomaly = [r for r in found.runs if r.group == "table4-quick"]
    assert all(r.bits == 8 and r.experiment == "anomaly" for r in anomaly)
    (comparison,) = [c for c in found.comparisons() if c.runs[0].group == "images-quick"]
    assert [r.model for r in comparison.runs] == ["f-nsf", "nsf", "vae"]


# -- comparisons and metrics -------------------------------------------------------------------
def test_comparisons_put_nsf_beside_each_latent_size(tmp_path, models):
    root = tmp_path / "runs"
    anomaly = {("f-nsf", 4), ("f-nsf", 16), ("vae", 4), ("vae", 16)}
    for name, latent in anomaly:
        make_run(root / "table4-quick" / f"{name}-{latent}", fk.models.anomaly_model(name, latent, preset="quick"),
                 seconds=latent + len(name))
    make_run(root / "table4-quick" / "nsf", fk.models.anomaly_model("nsf", preset="quick"), seconds=1.0)
    sets = g.comparisons(g.find_image_runs([root]).runs)
    assert [c.key for c in sets] == ["runs/table4-quick/mnist8-latent4", "runs/table4-quick/mnist8-latent16"]
    for comparison, latent in zip(sets, (4, 16)):
        assert [r.model for r in comparison.runs] == ["f-nsf", "nsf", "vae"]
        assert [r.latent_dim for r in comparison.runs] == [latent, 784, latent]
        assert "MNIST 8-bit" in comparison.title and f"latent {latent}" in comparison.title
    assert g.find_comparison(sets, sets[1].key) is sets[1]
    with pytest.raises(ValueError, match="unknown comparison 'nope'; expected one of 'runs/table4-quick/mnist8-latent4'"):
        g.find_comparison(sets, "nope")


def test_metrics_rows_read_the_runs(runs_root):
    runs = g.find_image_runs([runs_root]).runs
    rows = g.metrics_rows(runs)
    assert [row["model"] for row in rows] == ["F-NSF", "NSF", "VAE"]
    assert [row["likelihood"] for row in rows] == ["exact", "exact", "bound (ELBO)"]
    assert [row["bits/dim"] for row in rows] == [1.5, 2.5, 3.5]
    assert [row["training seconds"] for row in rows] == [10.0, 11.0, 12.0]
    assert [row["latent size"] for row in rows] == [16, 784, 16]
    assert rows[0]["parameters"] == runs[0].parameters > 0
    assert rows[0]["evaluated on"] == "MNIST test (100 images)" and rows[0]["run"] == runs[0].key


# -- sampling ----------------------------------------------------------------------------------
def test_sample_grid_is_seeded_and_tempered(models):
    model = models["f-nsf"]
    state = torch.get_rng_state()
    first = g.sample_grid(model, 6, temperature=0.75, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # torch's global random state is left alone
    assert first.dtype == torch.uint8 and first.shape == (1, 2 * 30 + 2, 3 * 30 + 2)  # 3 per row, padding 2
    assert torch.equal(first, g.sample_grid(model, 6, temperature=0.75, seed=3))
    assert not torch.equal(first, g.sample_grid(model, 6, temperature=0.5, seed=3))
    assert not torch.equal(first, g.sample_grid(model, 6, temperature=0.75, seed=4))
    # The tiles are the seeded samples, floor(u) * 2^(8 - 5), in order.
    images = samples_uint8(model, 6, 5, temperature=0.75, seed=3)
    assert torch.equal(first, image_grid(images, nrow=3))
    assert set(first.unique().tolist()) <= {8 * k for k in range(32)} | {255}


def test_sample_grid_of_a_vae_tempers_only_its_prior(models):
    vae = models["vae"]
    grid = g.sample_grid(vae, 4, temperature=0.5, seed=1)
    torch.manual_seed(1)
    z = torch.randn(4, vae.latent_dim) * 0.5
    expected = image_grid(to_uint8_images(vae.decode(z).detach(), 5), nrow=2)
    assert torch.equal(grid, expected)


def _tiles(grid, n, size=28, padding=2):
    """The n tiles of a one-row grid of image_grid (padding 2)."""
    return [grid[:, padding:padding + size, padding + i * (size + padding):padding + i * (size + padding) + size]
            for i in range(n)]


def test_where_the_randomness_of_a_sample_comes_from(models):
    """What the Samples tab tells a student: at T = 0 an NSF's samples are one picture, a funnel's
    still differ by its decoders' noise, unless the decoders are tempered too or give their means."""
    nsf, funnel = models["nsf"], models["f-nsf"]
    frozen = _tiles(g.sample_grid(nsf, 3, 0.0, 0, nrow=3), 3)
    assert torch.equal(frozen[0], frozen[1]) and torch.equal(frozen[0], frozen[2])
    paper = _tiles(g.sample_grid(funnel, 3, 0.0, 0, nrow=3), 3)
    assert not torch.equal(paper[0], paper[1])
    for temper in ("all", "mean"):
        quiet = _tiles(g.sample_grid(funnel, 3, 0.0, 0, nrow=3, temper=temper), 3)
        assert torch.equal(quiet[0], quiet[1]) and torch.equal(quiet[0], quiet[2]), temper
    one = g.sample_grid(funnel, 4, 1.0, 2, temper="base")
    assert torch.equal(one, g.sample_grid(funnel, 4, 1.0, 2, temper="all"))  # at T = 1 "all" is "base"
    assert not torch.equal(g.sample_grid(funnel, 4, 0.5, 2, temper="base"), g.sample_grid(funnel, 4, 0.5, 2, temper="all"))
    assert torch.equal(g.sample_grid(funnel, 4, 0.5, 2), g.sample_grid(funnel, 4, 0.5, 2, temper="base"))


def test_sample_grid_of_a_vae_can_show_its_decoder_means(models):
    vae = models["vae"]
    grid = g.sample_grid(vae, 4, temperature=0.5, seed=1, temper="mean")
    torch.manual_seed(1)
    z = torch.randn(4, vae.latent_dim) * 0.5
    assert torch.equal(grid, image_grid(to_uint8_images(vae.decode(z, noise_scale=0).detach(), 5), nrow=2))
    assert not torch.equal(grid, g.sample_grid(vae, 4, temperature=0.5, seed=1))


def test_sample_images_are_the_grids_draw(models):
    images = g.sample_images(models["f-nsf"], 6, 0.75, 3, temper="all")
    assert images.shape == (6, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(g.sample_grid(models["f-nsf"], 6, 0.75, 3, temper="all"), image_grid(images, nrow=3))
    assert g.sample_images(models["vae"], 300, 0.75, 3).shape == (300, 1, 28, 28)  # more than a grid may hold


def test_the_digit_metric_under_a_grid(models):
    """digit_quality is digit_metrics of the grid's seeded draw, beside real digits at the same size."""
    from funnelkit.digits import digit_metrics

    quality = g.digit_quality(models["f-nsf"], 0.5, "mean", 4, n=200)
    images = samples_uint8(models["f-nsf"], 200, 5, temperature=0.5, seed=4, temper="mean")
    assert quality.fid == pytest.approx(digit_metrics(images, metrics=("fid",))["fid"], rel=1e-6)
    assert quality.n == 200 and quality.bits == 5
    assert 0 < quality.real_fid < quality.fid  # an untrained model draws no digits
    assert quality.real_fid == g.real_digit_fid(200, 5)
    assert quality.line == (f"digit FID {quality.fid:,.0f} (the kit's MNIST classifier, 200 samples; real digits "
                            f"score about {quality.real_fid:,.0f}; lower is better)")
    with pytest.raises(ValueError, match=r"measures MNIST digits \(1, 28, 28\)"):
        g.digit_quality(fk.models.image_model("vae", "cifar10", 5, preset="quick"), n=10)
    with pytest.raises(ValueError, match="at least 2 samples"):
        g.digit_quality(models["vae"], n=1)


def test_which_runs_the_digit_metric_measures_and_how_they_were_trained(runs_root):
    run = g.find_image_runs([runs_root]).runs[0]
    assert g.measures_digits(run) and not g.measures_digits(replace(run, dataset="cifar10"))
    assert not g.measures_digits(replace(run, dataset="fashion-mnist"))  # not digits
    assert "MNIST digits" in g.not_measured_line(replace(run, dataset="cifar10"))
    assert run.training_line == "Trained 10 steps in 0.2 minutes on MNIST test."
    configured = replace(run, metrics={**run.metrics, "training": {"steps": 12000, "train_seconds": 2400,
                                                                     "config": {"batch_size": 64}}})
    assert configured.training_line == "Trained 12,000 steps of batch 64 in 40 minutes on MNIST test."
    assert replace(run, metrics={}).training_line is None
    staged = replace(run, metrics={**run.metrics, "training": {
        "steps": 9000, "train_seconds": 2406, "config": {"batch_size": 64},
        "extensions": [{"from_step": 1000, "to_step": 3000}, {"from_step": 3000, "to_step": 9000}]}})
    assert staged.training_line == "Trained 9,000 steps of batch 64 (3 stages) in 40 minutes on MNIST test."


def test_the_shipped_classroom_runs_say_how_they_were_trained():
    from funnelkit.experiments.shipped import SHIPPED_RUNS

    runs = {r.model: r for r in g.find_image_runs([SHIPPED_RUNS]).runs if r.group == "images-classroom"}
    assert set(runs) == {"f-nsf", "nsf", "vae"}, "the tracked runs data/runs/images-classroom are incomplete"
    for model, run in runs.items():  # steps, stages, minutes and data, from each run's own metrics.json
        training = run.metrics["training"]
        minutes = training["train_seconds"] / 60
        stages = f" ({len(training['extensions']) + 1} stages)" if training["extensions"] else ""
        took = f"{minutes:.1f}" if minutes < 10 else f"{minutes:,.0f}"
        assert run.training_line == (f"Trained {training['steps']:,} steps of batch 64{stages} in {took} minutes on "
                                     "MNIST first 10,000 of train (offline subset), a stand-in."), model
    assert "(4 stages) in 40 minutes" in runs["f-nsf"].training_line


def test_sample_grid_of_an_anomaly_model_uses_8_bits():
    model = fk.models.anomaly_model("vae", 4, preset="quick").eval()
    assert g.model_bits(model) == 8
    assert g.sample_grid(model, 1, 1.0, 0).shape == (1, 32, 32)


# -- PNG -----------------------------------------------------------------------------------------
def read_png(data):
    """A small PNG reader (8-bit grey or RGB, not interlaced): the oracle beside PIL."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, compressed = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
    assert depth == 8 and colour in (0, 2) and interlace == 0
    channels = 1 if colour == 0 else 3
    raw, stride = zlib.decompress(compressed), width * channels
    previous, rows = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                predictor = (0, a, b, (a + b) // 2)[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    pixels = torch.frombuffer(bytearray(b"".join(rows)), dtype=torch.uint8)
    return pixels.reshape(height, width, channels).permute(2, 0, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_png_bytes_decode_back_to_the_grid(channels):
    from PIL import Image

    grid = torch.randint(0, 256, (channels, 7, 11), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = g.png_bytes(grid)
    assert torch.equal(read_png(data), grid)
    with Image.open(io.BytesIO(data)) as image:
        array = torch.from_numpy(__import__("numpy").asarray(image).copy())
    assert torch.equal(array if channels == 3 else array[..., None], grid.permute(1, 2, 0))
    big = read_png(g.png_bytes(grid, scale=3))
    assert big.shape == (channels, 21, 33)
    assert torch.equal(big[:, ::3, ::3], grid) and torch.equal(big[:, 2::3, 1::3], grid)


def test_display_factor_enlarges_small_grids():
    assert g.display_factor(torch.zeros(1, 242, 242, dtype=torch.uint8)) == 2
    assert g.display_factor(torch.zeros(3, 530, 530, dtype=torch.uint8)) == 1


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [-0.5, math.nan, math.inf, "1", True, None])
def test_bad_temperature_is_a_value_error(models, temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        g.sample_grid(models["vae"], 4, temperature, 0)


@pytest.mark.parametrize("temper", ["hot", "BASE ", None])
def test_bad_temper_is_a_value_error_naming_the_choices(models, temper):
    with pytest.raises(ValueError, match="unknown temper .*expected one of 'base', 'all', 'mean'"):
        g.sample_grid(models["f-nsf"], 4, 1.0, 0, temper=temper)
    with pytest.raises(ValueError, match="unknown temper"):
        g.SampleSettings(temper=temper)


@pytest.mark.parametrize("n, words", [(0, "number of samples must be a positive int"), (-3, "positive int"),
                                      (2.5, "positive int"), (257, "from 1 to 256, got 257")])
def test_bad_number_of_samples_is_a_value_error(models, n, words):
    with pytest.raises(ValueError, match=words):
        g.sample_grid(models["vae"], n, 1.0, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", 2**31])
def test_bad_seed_is_a_value_error(models, seed):
    with pytest.raises(ValueError, match="seed must be a whole number from 0 to 2147483647"):
        g.sample_grid(models["vae"], 4, 1.0, seed)


def test_other_bad_input(runs_root):
    found = g.find_image_runs([runs_root])
    with pytest.raises(ValueError, match="unknown image run 'runs/nope'; expected one of 'runs/images-quick/"):
        found.get("runs/nope")
    with pytest.raises(ValueError, match=r"none \(no image runs were found\)"):
        g.Gallery([], [], []).get("x")
    with pytest.raises(ValueError, match="expected a uint8 picture of shape"):
        g.png_bytes(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="expected an image model"):
        g.model_bits(fk.models.plane_model("f-nsf", preset="quick"))


def test_sample_settings_read_and_write_links():
    settings = g.SampleSettings(run="shipped/x", temperature=0.75, samples=16, sample_seed=3, temper="mean")
    assert settings.to_query() == {"run": "shipped/x", "temperature": "0.75", "samples": "16", "sample_seed": "3",
                                   "temper": "mean"}
    assert g.SampleSettings.from_query(settings.to_query()) == (settings, [])
    assert g.SampleSettings.from_query({"temper": "All", "temperature": "0"})[0] == g.SampleSettings(temper="all",
                                                                                                      temperature=0.0)
    read, problems = g.SampleSettings.from_query({"temperature": ["nan"], "samples": "many", "sample_seed": "-2",
                                                  "seed": "7", "compare": "a/b", "temper": "hot"})
    assert read == g.SampleSettings(compare="a/b") and read.temper == "base"
    assert len(problems) == 4
    assert "temperature='nan' was ignored: temperature must be a finite number >= 0" in problems[0]
    assert "samples='many' was ignored: expected a whole number. Using 64 instead." in problems[1]
    assert "sample_seed='-2'" in problems[2]
    assert "temper='hot' was ignored: unknown temper 'hot'; expected one of 'base', 'all', 'mean'" in problems[3]
    assert "Using 'base' instead." in problems[3]
    with pytest.raises(ValueError, match="temperature must be from 0 to 1.5, got 2"):
        g.SampleSettings(temperature=2.0)


def test_the_download_name_says_what_t_tempers(runs_root):
    run = g.find_image_runs([runs_root]).runs[0]
    assert g.file_name(run, g.SampleSettings(temperature=0.5)).endswith("-T0.5-n64-seed0.png")
    assert g.file_name(run, g.SampleSettings(temperature=0.5, temper="all")).endswith("-T0.5-all-n64-seed0.png")
