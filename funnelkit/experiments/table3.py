"""Table 3: Inception score and FID of samples of NSF, F-NSF and the VAE (paper Sec. 4 "Image
Data", CIFAR-10 5-bit).

The models are Table 2's (:mod:`funnelkit.experiments.image_runs`; the same run folders, so a
finished Table 2 run is loaded, not trained again). Samples are drawn at temperature 1 (paper:
10,000; quick: 500), turned into pictures as NSF does (floor(u) 2^(8-b)), and scored with
:func:`funnelkit.fidelity.fid_and_inception_score` (torch-fidelity's Inception-v3, the TF
``inception-2015-12-05`` graph) against the test images at the same bit depth (paper preset: the
CIFAR-10 test set, as the authors' FID; quick: the held-out MNIST images, grey repeated to three
channels, a stand-in).

The Inception weights are never downloaded: pass ``inception_weights`` (``--inception-weights``).
Without them the table says "not computed: no Inception weights" beside the paper's numbers, and
the sample grids are still saved. With them, the result records the file's SHA-256 and says
whether it is torch-fidelity's official file (its name carries the first 8 hex digits of the
SHA-256); other weights give a pipeline check, never a real FID, and the table says so.

Beside them, for MNIST digits (the quick and classroom presets), **the kit's digit metric**: FID,
KID and IS on a small MNIST classifier's 128-wide features (:func:`funnelkit.digits.digit_metrics`,
torch-fidelity with the kit's own feature extractor; no download), of the same samples against the
held-out real digits. It is not Inception and its numbers are on its own scale
(``benchmarks/results/digit_metric.md``: real digits about 7, uniform noise about 1,100).

Numbers are implementation-specific (reference A.10): the paper's FID came from TF TTUR on JPEG
dumps and its IS from torchvision's Inception with a broken input scale, so ours are comparable
with each other, not digit for digit with Table 3. FID on a few hundred samples is strongly
biased upwards.
"""

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.dequantize import reduce_bits, to_uint8_images
from ..device import pick_device
from ..digits import METRIC_NAME, digit_metric_applies, digit_scores, load_classifier
from ..digits import NOT_APPLICABLE as DIGIT_METRIC_NOT_APPLICABLE
from ..fidelity import INCEPTION_WEIGHTS_FILE, check_weights_path, fid_and_inception_score
from . import paper_numbers as paper
from .image_runs import PRESETS as IMAGE_PRESETS
from .image_runs import ImageSettings, choose_image_settings, samples_uint8, single_column, train_image_models
from .results import data_line, pm, save_image_grid, table, write_result

NAME = "table3"
OFFICIAL_SHA256_PREFIX = INCEPTION_WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]  # "6726825d"
NOT_COMPUTED = "not computed: no Inception weights"


@dataclass(frozen=True)
class Table3Settings(ImageSettings):
    """Table 2's image settings, plus the number of samples scored per model (Inception and the
    kit's digit metric alike)."""

    samples: int = paper.TABLE3_SAMPLES
    grid_samples: int = 64
    reference_max: int = 10_000  # reference test images for FID (the CIFAR-10 test set has 10,000)


PRESETS = {
    "paper": Table3Settings(**{**asdict(IMAGE_PRESETS["paper"]), "columns": (("cifar10", 5),)}),
    # quick (and classroom, where Table 2 has it): 1,000 samples, as benchmarks/results/digit_metric.md
    **{name: Table3Settings(**{**asdict(settings), "samples": 1000})
       for name, settings in IMAGE_PRESETS.items() if name != "paper"},
}


def weights_record(path):
    """``{"file", "sha256", "official"}`` of an Inception weights file (checked to exist)."""
    path = check_weights_path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"file": str(path), "sha256": digest, "official": digest.startswith(OFFICIAL_SHA256_PREFIX)}


def _rgb(images):
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def reproduce_table3(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None,
                     inception_weights=None, **overrides):
    """Sample the Table 2 models at T = 1, score them (with weights), write ``table3.{json,md}`` and grids."""
    settings = choose_image_settings(PRESETS, preset, overrides, NAME)
    weights = weights_record(inception_weights) if inception_weights is not None else None
    column = single_column(settings, root, "Table 3")
    device = pick_device(device)
    started = time.perf_counter()
    digits = digit_metric_applies(column.dataset, column.test)
    if digits:
        load_classifier()  # a missing or broken classifier file stops here, before any training
    image_runs = train_image_models(column, settings, preset, device, progress, runs)
    reference = to_uint8_images(reduce_bits(column.test[: settings.reference_max], column.bits), column.bits)
    ours, grids = {}, []
    for name, run in image_runs.items():
        # nothing to score without weights or digits: then only the grid's samples are drawn
        n = settings.samples if weights is not None or digits else settings.grid_samples
        samples = samples_uint8(run.model, n, column.bits, progress=progress)
        grid = f"table3_{name}.png"
        save_image_grid(samples[: settings.grid_samples], Path(out) / grid)
        grids.append(grid)
        row = {"samples": n, "temperature": 1.0, "grid": grid, "bpd": run.metrics["evaluation"]["bpd"],
               "latent_dim": run.metrics["latent_dim"], "status": run.status,
               # against the held-out real digits at 8 bits (the digit metric's reference), not reduced
               "digit_metric": digit_scores(samples, column.test[: settings.reference_max]) if digits else None}
        if weights is None:
            row.update(inception_score=None, fid=None, note=NOT_COMPUTED)
        else:
            scores = fid_and_inception_score(_rgb(samples), _rgb(reference),
                                             feature_extractor_weights_path=weights["file"],
                                             device="cuda" if device.type == "cuda" else "cpu")
            row.update(scores)
            row["note"] = ("torch-fidelity Inception-v3, official weights" if weights["official"] else
                           "PIPELINE CHECK ONLY: the weights file is not torch-fidelity's official one, "
                           "so these are not FID/IS values")
        ours[name] = row
    result = {
        "result": NAME,
        "preset": preset,
        "device": str(device),
        "data": column.records,
        "stand_in": column.stand_in,
        "column": f"{column.dataset}-{column.bits}",
        "reference_images": len(reference),
        "inception_weights": weights,
        "digit_metric": METRIC_NAME if digits else DIGIT_METRIC_NOT_APPLICABLE,
        "paper": {k: list(v) for k, v in paper.TABLE3.items()},
        "ours": ours,
        "figures": grids,
        "seconds_this_call": time.perf_counter() - started,
        "settings": asdict(settings),
    }
    write_result(out, NAME, result, markdown(result))
    return result


_SHOWN = {"dcgan*": "DCGAN*", "wgan-gp*": "WGAN-GP*", "pixelcnn*": "PIXELCNN*", "pixelqn*": "PIXELQN*",
          "nsf": "NSF", "f-nsf": "F-NSF", "vae": "VAE"}


def markdown(result):
    """Table 3 beside ours, the data, the weights and the sample grids."""
    weights = result["inception_weights"]
    lines = [f"# Table 3: Inception score (higher is better) and FID (lower is better) ({result['preset']} preset)", "",
             "Data:", *[data_line(r) for r in result["data"]], ""]
    if weights is None:
        lines += [f"**{NOT_COMPUTED[0].upper() + NOT_COMPUTED[1:]}.** The kit never downloads them: get torch-fidelity's "
                  f"`{INCEPTION_WEIGHTS_FILE}` once and pass `--inception-weights PATH`. The sample grids are saved.", ""]
    elif weights["official"]:
        lines += [f"Scored with torch-fidelity's Inception-v3 (`{Path(weights['file']).name}`, SHA-256 "
                  f"{weights['sha256'][:16]}..., the official file) on {result['ours'][next(iter(result['ours']))]['samples']:,} "
                  f"samples per model against {result['reference_images']:,} test images at the same bit depth.", ""]
    else:
        lines += [f"**Pipeline check only**: the weights file `{weights['file']}` (SHA-256 {weights['sha256'][:16]}...) is "
                  "not torch-fidelity's official Inception file, so the numbers below are not FID or IS values.", ""]
    if result["stand_in"]:
        lines += ["**Stand-in data**: the paper scores CIFAR-10 5-bit samples; ours are MNIST samples (grey, "
                  "repeated to three channels), not comparable with its numbers.", ""]
    rows = []
    for model, (inception, fid) in paper.TABLE3.items():
        mine = result["ours"].get(model)
        if mine is None:
            ours_is = ours_fid = "-"
        elif mine.get("inception_score") is None:
            ours_is = ours_fid = NOT_COMPUTED
        else:
            ours_is = pm(mine["inception_score"], mine.get("inception_score_std"))
            ours_fid = pm(mine.get("fid"))
        is_digits, fid_digits = paper.TABLE3_DECIMALS[model]
        rows.append([_SHOWN[model], f"{inception:.{is_digits}f}", f"{fid:.{fid_digits}f}", ours_is, ours_fid])
    lines += [table(["model", "IS paper", "FID paper", "IS ours (+- std over splits)", "FID ours"], rows, "lrrrr"), "",
              "* from Ostrovski et al., as the paper quotes them. FID and IS depend on the implementation: the "
              "paper's FID used TF TTUR on JPEG dumps and its IS torchvision's Inception (reference A.10).", "",
              "Sample grids (temperature 1): " + ", ".join(f"`{g}`" for g in result["figures"]), ""]
    return "\n".join(lines + digit_metric_markdown(result))


def digit_metric_markdown(result):
    """The kit's digit metric of each model's samples (or why there is none), as Markdown lines."""
    rows = [(name, row["digit_metric"]) for name, row in result["ours"].items() if row.get("digit_metric")]
    if not rows:
        return [f"The kit's digit metric: {result.get('digit_metric', DIGIT_METRIC_NOT_APPLICABLE)}.", ""]
    n, n_reference = rows[0][1]["n"], rows[0][1]["n_reference"]
    lines = ["## The kit's digit metric (not Inception)", "",
             f"FID, KID and IS: {METRIC_NAME}, computed by torch-fidelity with the kit's classifier "
             f"(`funnelkit.digits.digit_metrics`), {n:,} samples per model at T = 1 against the {n_reference:,} "
             "held-out real digits. Its own scale, not comparable with the paper's Inception numbers above: real "
             "digits score about 7, blurred ones 280, uniform noise 1,100 (`benchmarks/results/digit_metric.md`).", "",
             table(["model", "FID (lower is better)", "KID", "IS (higher is better, at most 10)"],
                   [[_SHOWN[name], f"{m['fid']:,.1f}", f"{m['kid']:,.2f}", pm(m["is"], m["is_std"])]
                    for name, m in rows], "lrrr"), ""]
    return lines


__all__ = ["NOT_COMPUTED", "PRESETS", "Table3Settings", "digit_metric_markdown", "markdown", "reproduce_table3",
           "weights_record"]
