"""Shipped runs: finished quick-preset run folders under ``data/runs``, so readers skip training.

A run folder made by ``funnelkit reproduce RESULT --preset quick`` (or ``funnelkit train``) holds
``checkpoint.pt`` (the model and the trainer's state), ``metrics.json`` and ``evaluation.pt``.
:func:`ship` copies a finished one into ``data/runs/<RESULT>-quick/<run>`` without what only a
resumed training needs (the optimiser's moments, the random generators). It keeps the weights, the
model and training configs, the step count, the wall time and the loss history (paths inside this
checkout are written relative to it), and writes its ``metrics.json`` in the current format
(:mod:`funnelkit.runs`): the copy is a third of the size, and
:func:`funnelkit.experiments.runs.train_or_load` loads it as a finished run.

With ``float16=True`` (``funnelkit ship --float16``) the weights are stored in float16, half the
size again; loading casts them back to the model's float32. The run is scored afresh with the
rounded weights on its own test data, and the copy is made only if no test number (bits/dim, or
nats for a tabular run) moved by more than ``FLOAT16_TOLERANCE``; the copy's ``metrics.json`` and
``evaluation.pt`` then hold the new numbers (what the shipped weights give), and
``metrics["shipped_weights"]`` the dtype and the float32 numbers beside them.

:func:`use_shipped` copies the shipped folders into a working runs folder (only those not there
yet), so ``reproduce_table2(runs=that)`` and the notebooks load instead of training.
"""

import json
import shutil
from pathlib import Path

import torch

from .. import runs as folders
from ..checkpoints import CHECKPOINT_NAME, load, read_checkpoint
from ..files import write_atomically
from ..locks import folder_lock
from ..paths import SHIPPED_RUNS, shown_in_text
from ..runs import EVALUATION_NAME, METRICS_NAME
from .results import plain

#: Trainer state a finished run keeps when shipped; the rest only serves a resumed training.
KEPT_TRAINER_STATE = ("config", "step", "seconds", "history")
#: The most a test number (bits/dim, or nats) may move when the weights are stored in float16.
FLOAT16_TOLERANCE = 0.005
#: The test numbers of the experiments compared: images, anomaly (both sets) and tabular.
_SCORES = ("bpd", "mnist", "f_mnist", "ll")


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


def ship(folder, to=SHIPPED_RUNS, float16=False, progress=False):
    """Copy the finished runs of ``folder`` to ``to/<folder name>/<run>``, without resume-only state
    (with ``float16``, its weights in float16 where that moves no test number by more than
    ``FLOAT16_TOLERANCE``; the module docstring says how).

    Returns the written run folders. Everything is read, checked (and, with ``float16``, scored)
    before anything is written.
    """
    folder = Path(folder)
    runs = finished_runs(folder)
    payloads = [read_checkpoint(run) for run in runs]  # a damaged checkpoint fails here, before writing
    copies = [_float16_copy(run, payload, progress) if float16 else _copy(run, payload)
              for run, payload in zip(runs, payloads)]
    group = Path(to) / (folder.parent.name if runs == [folder] else folder.name)
    written = []
    for run, (payload, metrics, arrays) in zip(runs, copies):
        trainer = payload.get("trainer") or {}
        slim = {**payload, "trainer": {k: trainer[k] for k in KEPT_TRAINER_STATE if k in trainer}}
        out = group / run.name
        # the data descriptions name files by absolute path: this checkout's paths mean nothing elsewhere
        metrics = json.loads(shown_in_text(folders.metrics_text(metrics)))
        with folder_lock(out):
            write_atomically(out / CHECKPOINT_NAME, lambda file, slim=slim: torch.save(slim, file))
            if arrays:
                write_atomically(out / EVALUATION_NAME, lambda file, arrays=arrays: torch.save(arrays, file))
            folders.write_metrics(out, metrics)
        written.append(out)
    return written


def _copy(run, payload):
    """``(payload, metrics, per-example arrays)`` of ``run`` as they are."""
    return payload, folders.read_metrics(run), folders.read_evaluation(run)


def _float16_copy(run, payload, progress):
    """``(payload, metrics, arrays)`` with the weights in float16 and the test numbers they give;
    ``run`` as it is when a number would move by more than ``FLOAT16_TOLERANCE``."""
    from . import commands  # here, not on top: commands imports this module

    state = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    model = commands.load_run(run)
    model.load_state_dict(state)  # cast back to the model's dtype, as loading the copy will
    model.eval()
    description = folders.describe_run(run)
    spec = commands.spec_of(model, run, None, description)
    numbers, arrays = commands.evaluate(spec, model, commands.load_data(spec), progress)
    stored = description.evaluation
    moved = {k: abs(numbers[k] - stored[k]) for k in _SCORES if k in stored}
    counts = [k for k in ("n", "n_in", "n_out") if k in stored and stored[k] != numbers.get(k)]
    if not moved or counts:
        raise ValueError(f"{run}: its stored test numbers ({', '.join(sorted(stored)) or 'none'}) are not the ones "
                         "`funnelkit eval` recomputes; ship it without --float16")
    if max(moved.values()) > FLOAT16_TOLERANCE:
        print(f"{run.name}: kept in float32 (float16 moves {max(moved, key=moved.get)} by "
              f"{max(moved.values()):.4f}, more than {FLOAT16_TOLERANCE})")
        return _copy(run, payload)
    metrics = folders.read_metrics(run)
    metrics = {**metrics, "evaluation": plain(numbers),
               "shipped_weights": {"dtype": "float16", "tolerance": FLOAT16_TOLERANCE,
                                   "evaluation_in_float32": stored}}
    arrays = {k: torch.as_tensor(v).detach().cpu() for k, v in (arrays or {}).items()}
    return {**payload, "state_dict": state}, metrics, arrays


def trained(group, model, latent_size=None, dataset=None, device="cpu", shipped=SHIPPED_RUNS):
    """A shipped, finished model of ``data/runs/<group>``, loaded and ready: ``fk.trained("images-classroom", "f-nsf")``.

    The teaching notebooks' one way to a trained model, with no run folder in sight. ``model``:
    the model's name as in its run folder ("f-nsf", "nsf", "vae", "f-mlp", ...); ``latent_size``
    and ``dataset`` pick among runs of one model that differ in them (Table 4's latent 4 and 16,
    Table 1's "power" and "gas"). The returned
    model carries ``.run``, its :class:`funnelkit.runs.RunDescription` (steps, data, test numbers),
    and ``.trained_line``, one sentence saying how it was trained.
    """
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
