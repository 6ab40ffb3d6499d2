"""Table 2 (test bits per dimension and latent size of NSF, F-NSF and VAE on images) and Fig. 3
(samples of the F-NSF); paper Sec. 4 "Image Data", A.8, Table 7.

Presets:

* ``"paper"``: CIFAR-10 and ImageNet64 ("small", van den Oord et al.), 5 and 8 bits, the
  paper-preset models (:func:`funnelkit.models.image.image_model`) trained with Table 7 / A.8:
  Adam, learning rate 5e-4 cosine-annealed to 0, batch 512 (CIFAR-10) or 256 (ImageNet64),
  100,000 steps at 5 bits and 200,000 at 8 bits, for every model: the funnels too, where A.8 says
  "All funnel experiments are run for 12 hours" (a wall-clock budget on an RTX 3090 that no
  other machine repeats; docs/errata.md). Bits/dim are on the **test** split (the
  authors' code reported a 1% validation split of train, reference note 6.3 item 7); 1% of
  train, cut by a fixed seed, is the validation split the Trainer reports during training.
  Missing files raise :class:`~funnelkit.data.cache.DatasetNotFoundError` before anything is
  trained or written.
* ``"quick"``: a **stand-in** for CIFAR-10 5-bit, labelled as one: MNIST at 5 bits (the kit's
  offline first 10,000 training images, also where the full MNIST is there: a quick run is the
  same on every machine, and the shipped runs of ``data/runs`` are its runs), split by a fixed seed into training images
  and 1,000 held-out ones, with the quick MNIST models (``image_model(name, "mnist", 5,
  "quick")``: NSF, F-NSF with latent 16, MLP VAE with latent 16), 400 steps of batch 64 at
  learning rate 1e-3 (cosine-annealed), 4,000 for the VAE (its steps are cheap, and its single
  output scale needs them to move; see :mod:`funnelkit.experiments.table4`). Not comparable with
  the paper's numbers; the table says so.
* ``"classroom"``: the same stand-in data and split, with the classroom MNIST models
  (``image_model(name, "mnist", 5, "classroom")``, sized by measurement for a 2-core laptop CPU:
  ``benchmarks/results/classroom_sweep.md``), batches of 64 at 2e-3 (cosine): the F-NSF
  ``CLASSROOM_STEPS`` steps, the NSF ``CLASSROOM_NSF_STEPS`` (its steps cost about twice an
  F-NSF's, so both had about 35-40 CPU minutes) and the VAE ``CLASSROOM_VAE_STEPS``: the steps of
  the runs shipped in ``data/runs/images-classroom`` (``data/runs/README.md``), so
  ``funnelkit reproduce table2 --preset classroom --shipped`` (or :func:`use_shipped` into the runs
  folder) loads them instead of training. Those runs were made in stages with ``--extend`` (each
  stage a fresh cosine schedule; ``metrics.json`` lists the stages, and the table says so); trained
  here from scratch, the preset runs one cosine schedule over all its steps instead.

The settings, data, training and sampling live in :mod:`funnelkit.experiments.image_runs`,
shared with Table 3 and Fig. 4. Every model is trained by
:func:`funnelkit.experiments.runs.train_or_load` in
``<runs>/images-<preset>/<data>-<model>``; Table 3 and Fig. 4 use the same runs (so they load
what Table 2 trained, and the other way round). Bits per dimension: -log p(u) / (D ln 2) of the
b-bit images dequantised with a fixed noise, two standard errors; the VAE's is its ELBO, a bound.
Training keeps the Trainer's gradient-norm clipping at 5 (A.8 is silent; the authors' image code
did not clip) as a guard against rare divergence.

Fig. 3 is a grid of F-NSF samples at temperature 1 (``fig3.png``), pixels floor(u) 2^(8-b).
"""

import time
from dataclasses import asdict
from pathlib import Path

from ..device import pick_device
from . import paper_numbers as paper
# The shared image runs; names re-exported for the callers that import them from Table 2's module
from .image_runs import (CLASSROOM_NSF_STEPS, CLASSROOM_STEPS, CLASSROOM_VAE_STEPS, PAPER_COLUMNS, PRESETS,
                         RUNS_NAME, SAMPLE_SEED, SPLIT_SEED, ImageSettings, ImageSplits, choose_image_settings,
                         load_columns, samples_uint8, single_column, steps_of, train_image_models, training_settings)
from .results import count, data_line, pm, save_image_grid, table, write_result

NAME = "table2"


# --------------------------------------------------------------------------------------------
# The entries
# --------------------------------------------------------------------------------------------

def reproduce_table2(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None, **overrides):
    """Train (or load) NSF, F-NSF and VAE per column; write ``table2.json``, ``table2.md`` and ``fig3.png``.

    ``overrides`` change :class:`ImageSettings` fields (``steps``, ``batch_size``, ``lr``,
    ``held_out``, ``test_max``, ``model_overrides``, ...).
    """
    settings = choose_image_settings(PRESETS, preset, overrides, NAME)
    columns = load_columns(settings, root)  # raises before anything is written when a file is missing
    device = pick_device(device)
    started = time.perf_counter()
    ours, records, figures = {}, [], []
    for column in columns:
        column_runs = train_image_models(column, settings, preset, device, progress, runs)
        key = f"{column.dataset}-{column.bits}"
        ours[key] = {name: run_row(run) for name, run in column_runs.items()}
        records += column.records
        if "f-nsf" in column_runs:
            path = f"fig3_{key}.png" if len(columns) > 1 else "fig3.png"
            save_image_grid(samples_uint8(column_runs["f-nsf"].model, settings.fig3_samples, column.bits),
                            _path(out, path))
            figures.append(path)
    result = {
        "result": NAME,
        "preset": preset,
        "device": str(device),
        "data": records,
        "stand_in": any(r["stand_in"] for r in records),
        "columns": [f"{c.dataset}-{c.bits}" for c in columns],
        "paper_columns": _paper_columns(columns),
        "paper": {model: {c: list(v) for c, v in row.items()} for model, row in paper.TABLE2.items()},
        "ours": ours,
        "figures": figures,
        "seconds_this_call": time.perf_counter() - started,
        "settings": _plain_settings(settings),
    }
    write_result(out, NAME, result, markdown(result))
    return result


def run_row(run):
    """What Table 2 reports of one run: its test numbers, sizes, steps, training seconds (the
    Trainer's clock), the stages it was trained in (``[first, ..., steps]``: one entry unless
    extended with ``--extend``), how it was got (trained, loaded, ...) and its folder."""
    training = run.metrics["training"]
    extensions = training.get("extensions") or []
    stages = [extensions[0]["from_step"], *[e["to_step"] for e in extensions]] if extensions else [training["steps"]]
    return {**run.metrics["evaluation"], "latent_dim": run.metrics["latent_dim"],
            "parameters": run.metrics["parameters"], "exact": run.metrics["exact"], "steps": training["steps"], "train_seconds": training.get("train_seconds"),
            "stages": stages, "status": run.status, "run": str(run.out)}


def reproduce_fig3(preset="quick", out="results", device="cpu", progress=True, root=None, runs=None, **overrides):
    """Fig. 3: a grid of F-NSF samples at temperature 1 per column (trains or loads only the F-NSF)."""
    settings = choose_image_settings(PRESETS, preset, overrides, "fig3")
    columns = load_columns(settings, root)
    device = pick_device(device)
    figures, rows = [], {}
    for column in columns:
        run = train_image_models(column, settings, preset, device, progress, runs, models=("f-nsf",))["f-nsf"]
        key = f"{column.dataset}-{column.bits}"
        path = f"fig3_{key}.png" if len(columns) > 1 else "fig3.png"
        save_image_grid(samples_uint8(run.model, settings.fig3_samples, column.bits), _path(out, path))
        figures.append(path)
        rows[key] = {**run.metrics["evaluation"], "latent_dim": run.metrics["latent_dim"], "run": str(run.out)}
    records = [r for c in columns for r in c.records]
    result = {"result": "fig3", "preset": preset, "data": records, "stand_in": any(r["stand_in"] for r in records),
              "figures": figures, "samples": settings.fig3_samples, "temperature": 1.0, "ours": rows,
              "settings": _plain_settings(settings)}
    lines = [f"# Fig. 3: samples of the F-NSF at temperature 1 ({preset} preset)", "",
             "The paper shows F-NSF samples for CIFAR-10 5-bit (left) and ImageNet64 5-bit (right).", "",
             "Data:", *[data_line(r) for r in records], "",
             *[f"- `{f}`: {settings.fig3_samples} samples; the model's test bits/dim "
               f"{pm(rows[k]['bpd'], rows[k]['bpd_2se'], 3)}, latent {rows[k]['latent_dim']:,}"
               for f, k in zip(figures, rows)], ""]
    write_result(out, "fig3", result, "\n".join(lines))
    return result


def _minutes(seconds):
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def _path(out, name):
    return Path(out) / name


def _plain_settings(settings):
    return asdict(settings)


def _paper_columns(columns):
    """The paper's column each of ours sits beside (quick: MNIST 5-bit beside CIFAR-10 5-bit)."""
    out = {}
    for c in columns:
        dataset = "cifar10" if c.dataset == "mnist" else c.dataset
        out[f"{c.dataset}-{c.bits}"] = f"{dataset}-{c.bits}"
    return out


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

_SHOWN = {"nsf": "NSF", "f-nsf": "F-NSF", "vae": "VAE (ELBO, a bound)", "baseline": "BASELINE", "glow*": "GLOW*"}


def markdown(result):
    """Table 2 beside ours, per column, with the data named."""
    lines = [f"# Table 2: test bits per dimension (BPD, lower is better) and latent size (LS) ({result['preset']} preset)",
             "", "Data:", *[data_line(r) for r in result["data"]], ""]
    if result["stand_in"]:
        lines += ["**Stand-in data**: our numbers are on MNIST (grey digits), not on CIFAR-10; they cannot be "
                  "compared with the paper's column digit for digit. Compare the models with each other: the "
                  "paper's finding is that the F-NSF is close to NSF in bits/dim with a latent 1/16 the size, "
                  "and the VAE far behind.", ""]
    for column in result["columns"]:
        theirs = result["paper_columns"][column]
        dataset, bits = column.rsplit("-", 1)
        ours = result["ours"][column]
        title = paper.TABLE2_COLUMN_NAMES[theirs]
        lines += [f"## {title} (paper) beside {dataset} {bits}-bit (ours{', stand-in' if result['stand_in'] else ''})", ""]
        rows = []
        for model in ("baseline", "nsf", "f-nsf", "vae", "glow*"):
            bpd, ls = paper.TABLE2[model][theirs]
            mine = ours.get(model)
            rows.append([_SHOWN[model], f"{bpd:.2f}", count(ls),
                         pm(mine["bpd"], mine["bpd_2se"], 3) if mine else "-",
                         count(mine["latent_dim"]) if mine else "-",
                         count(mine["parameters"]) if mine else "-",
                         count(mine["steps"]) if mine else "-",
                         _minutes(mine.get("train_seconds")) if mine else "-"])
        lines += [table(["model", "BPD paper", "LS paper", "BPD ours (+- 2 s.e.)", "LS ours", "parameters ours",
                         "steps ours", "training min ours"], rows, "lrrrrrrr"), ""]
        if "nsf" in ours and "f-nsf" in ours:
            gap = ours["f-nsf"]["bpd"] - ours["nsf"]["bpd"]
            steps = ("" if ours["f-nsf"]["steps"] == ours["nsf"]["steps"] else
                     f" (after {ours['f-nsf']['steps']:,} steps of the F-NSF and {ours['nsf']['steps']:,} of NSF)")
            where = "above" if gap > 0 else "below"
            lines.append(f"Here the F-NSF is {abs(gap):.3f} bits/dim {where} NSF{steps} with a latent "
                         f"{ours['nsf']['latent_dim'] / ours['f-nsf']['latent_dim']:.0f} times smaller "
                         f"(paper: {paper.TABLE2['f-nsf'][theirs][0] - paper.TABLE2['nsf'][theirs][0]:+.2f}, 16 times smaller).")
            lines.append("")
        staged = [f"{_SHOWN[m].split(' ')[0]} {' -> '.join(f'{s:,}' for s in row['stages'])}"
                  for m, row in ours.items() if len(row.get("stages") or ()) > 1]
        if staged:
            lines += ["Trained in stages with `--extend` (each stage a fresh cosine learning-rate schedule over its "
                      f"steps, recorded in the run's metrics.json): {'; '.join(staged)} steps. Training minutes: the "
                      "Trainer's clock of the training steps, all stages.", ""]
    lines += ["Rows without a number of ours (BASELINE, GLOW*) are the paper's references; the kit does not train them "
              "(BASELINE, the paper's 'baseline flow with affine transformations', is described no further).",
              "* GLOW: taken by the paper from van den Oord et al. and Kingma et al.", ""]
    if result["figures"]:
        lines += ["Fig. 3 (F-NSF samples at temperature 1): " + ", ".join(f"`{f}`" for f in result["figures"]), ""]
    return "\n".join(lines)


__all__ = ["CLASSROOM_NSF_STEPS", "CLASSROOM_STEPS", "CLASSROOM_VAE_STEPS", "ImageSettings", "ImageSplits", "NAME",
           "PAPER_COLUMNS", "PRESETS", "RUNS_NAME", "SAMPLE_SEED", "SPLIT_SEED", "choose_image_settings",
           "load_columns", "markdown", "reproduce_fig3", "reproduce_table2", "run_row", "samples_uint8",
           "single_column", "steps_of", "train_image_models", "training_settings"]
