"""Shipped runs: finished quick-preset run folders under ``data/runs``, so readers skip training.

A run folder made by ``funnelkit reproduce RESULT --preset quick`` (or ``funnelkit train``) holds
``checkpoint.pt`` (the model and the trainer's state), ``metrics.json`` and ``evaluation.pt``.
:func:`ship` copies a finished one into ``data/runs/<RESULT>-quick/<run>`` without what only a
resumed training needs (the optimiser's moments, the random generators). It keeps the weights, the
model and training configs, the step count, the wall time and the loss history (paths inside this
checkout are written relative to it), and writes its ``metrics.json`` in the current format
(:mod:`funnelkit.runs`): the copy is a third of the size, and
:func:`funnelkit.experiments.runs.train_or_load` loads it as a finished run.

:func:`use_shipped` copies the shipped folders into a working runs folder (only those not there
yet), so ``reproduce_table2(runs=that)`` and the notebooks load instead of training.
"""

import json
import shutil
from pathlib import Path

import torch

from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, read_checkpoint
from ..files import write_atomically
from ..locks import folder_lock
from ..paths import DATA_DIR, shown_in_text
from ..runs import EVALUATION_NAME, METRICS_NAME

SHIPPED_RUNS = DATA_DIR / "runs"
#: Trainer state a finished run keeps when shipped; the rest only serves a resumed training.
KEPT_TRAINER_STATE = ("config", "step", "seconds", "history")


def finished_runs(folder):
    """The finished run folders in ``folder`` (or ``folder`` itself if it is one), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: expected a run folder or a folder of run folders "
                                "(e.g. runs/images-quick, made by `funnelkit reproduce ... --runs runs`)")
    candidates = [folder] if (folder / CHECKPOINT_NAME).is_file() else sorted(p for p in folder.iterdir() if p.is_dir())
    runs = [p for p in candidates if _finished(p)]
    if not runs:
        raise ValueError(f"{folder} holds no finished run (a folder with {CHECKPOINT_NAME} and a {METRICS_NAME} "
                         "saying finished): train it first")
    return runs


def _finished(folder):
    try:
        return bool((folders.read_metrics(folder) or {}).get("finished"))
    except ValueError:  # a damaged metrics.json: not a finished run
        return False


def ship(folder, to=SHIPPED_RUNS):
    """Copy the finished runs of ``folder`` to ``to/<folder name>/<run>``, without resume-only state.

    Returns the written run folders. Everything is read and checked before anything is written.
    """
    folder = Path(folder)
    runs = finished_runs(folder)
    payloads = [read_checkpoint(run) for run in runs]  # a damaged checkpoint fails here, before writing
    group = Path(to) / (folder.parent.name if runs == [folder] else folder.name)
    written = []
    for run, payload in zip(runs, payloads):
        trainer = payload.get("trainer") or {}
        slim = {**payload, "trainer": {k: trainer[k] for k in KEPT_TRAINER_STATE if k in trainer}}
        out = group / run.name
        # the data descriptions name files by absolute path: this checkout's paths mean nothing elsewhere
        metrics = json.loads(shown_in_text(folders.metrics_text(folders.read_metrics(run))))
        with folder_lock(out):
            write_atomically(out / CHECKPOINT_NAME, lambda file, slim=slim: torch.save(slim, file))
            if (run / EVALUATION_NAME).is_file():
                write_atomically(out / EVALUATION_NAME,
                                 lambda file, source=run / EVALUATION_NAME: file.write(source.read_bytes()))
            folders.write_metrics(out, metrics)
        written.append(out)
    return written


def trained(group, model, latent_size=None, dataset=None, device="cpu", shipped=SHIPPED_RUNS):
    """A shipped, finished model of ``data/runs/<group>``, loaded and ready: ``fk.trained("images-classroom", "f-nsf")``.

    The teaching notebooks' one way to a trained model, with no run folder in sight. ``model``:
    the model's name as in its run folder ("f-nsf", "nsf", "vae", "f-mlp", ...); ``latent_size``
    and ``dataset`` pick among runs of one model that differ in them (Table 4's latent 4 and 16,
    Table 1's "power" and "gas"). The returned
    model carries ``.run``, its :class:`funnelkit.runs.RunDescription` (steps, data, test numbers),
    and ``.trained_line``, one sentence saying how it was trained.
    """
    from ..checkpoints import load

    folder = Path(shipped) / group
    if not folder.is_dir():
        available = sorted(p.name for p in Path(shipped).iterdir() if p.is_dir()) if Path(shipped).is_dir() else []
        raise ValueError(f"no shipped runs {group!r} in {shipped}; expected one of {available}")
    descriptions = [folders.describe_run(run) for run in finished_runs(folder)]
    matches = [d for d in descriptions if d.model == model and latent_size in (None, d.latent_size)
               and dataset in (None, d.dataset)]
    if len(matches) != 1:
        offered = ", ".join(sorted(f"{d.model} ({d.dataset}, latent {d.latent_size})" for d in descriptions))
        asked = "".join(f" with {name} {value!r}" for name, value in (("dataset", dataset), ("latent", latent_size))
                        if value is not None)
        what = "no" if not matches else f"{len(matches)}"
        raise ValueError(f"{what} shipped runs of {model!r}{asked} in {folder}; expected one of: {offered}"
                         + ("; pass latent_size or dataset" if matches else ""))
    run = matches[0]
    loaded = load(run.path, device=device)
    loaded.run = run
    loaded.trained_line = trained_line(run)
    return loaded


def trained_line(run):
    """One sentence on how a run was trained (steps, batch, stages, minutes, data), its model named first."""
    data = "; ".join(record["name"] for record in run.data if record.get("name")) or "its data"
    return f"{run.model.upper()}: " + (folders.training_sentence(run.training, data) or "no record of its training.")


def use_shipped(runs, groups=None, shipped=SHIPPED_RUNS):
    """Copy the shipped run folders into ``runs`` where ``runs`` has no such run yet.

    ``groups``: the shipped folders to copy, e.g. ``["table1-quick"]`` (default: all).
    Returns the folders copied (an empty list when all were there, or nothing is shipped).
    """
    runs, shipped = Path(runs), Path(shipped)
    available = sorted(p.name for p in shipped.iterdir() if p.is_dir()) if shipped.is_dir() else []
    unknown = sorted(set(groups or ()) - set(available))
    if unknown:
        raise ValueError(f"no shipped runs {unknown} in {shipped}; expected some of {available}")
    copied = []
    for checkpoint in sorted(shipped.glob(f"*/*/{CHECKPOINT_NAME}")):
        source = checkpoint.parent
        if groups is not None and source.parent.name not in groups:
            continue
        target = runs / source.parent.name / source.name
        if not (target / CHECKPOINT_NAME).exists():
            with folder_lock(target):
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".lock", ".*.tmp"))
            copied.append(target)
    return copied


__all__ = ["KEPT_TRAINER_STATE", "SHIPPED_RUNS", "finished_runs", "ship", "trained", "trained_line", "use_shipped"]
