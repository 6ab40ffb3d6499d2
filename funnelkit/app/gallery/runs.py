"""Finding image runs: the run folders of Table 2's ``image`` and Table 4's MNIST ``anomaly`` models.

:func:`find_image_runs` searches a list of folders: by default the kit's shipped runs
(``data/runs``) and your own (``runs/`` in the repository root); the environment variable
``FUNNELKIT_APP_RUNS`` (folders separated by ``os.pathsep``) replaces that list. Tabular and
four-circles runs are skipped; a damaged run is reported in ``Gallery.problems``, never raised.
"""

import functools
import json
import math
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...checkpoints import CHECKPOINT_NAME, CheckpointError, read_checkpoint
from ...experiments.shipped import SHIPPED_RUNS
from ...runs import METRICS_NAME, describe_run, training_sentence
from ...paths import REPO_ROOT
from .compare import comparisons
from .names import DATA_SHAPES, DATASET_NAMES, IMAGE_BUILDERS, MODEL_NAMES, run_order

RUNS_ENV = "FUNNELKIT_APP_RUNS"
USER_RUNS = REPO_ROOT / "runs"
#: How to make runs when there are none (the quick ones take a few minutes on a CPU).
MAKE_RUNS = ("funnelkit reproduce table2 --preset quick --runs runs",
             "funnelkit train images --dataset cifar10 --bits 5 --model f-nsf --preset paper --download")


@dataclass(frozen=True)
class ImageRun:
    """One image run folder: what model it holds, on which data, and its stored metrics.

    ``key`` names it in links (``<folder label>/<path inside that folder>``); ``source`` is
    "shipped" (the kit's ``data/runs``) or "your runs"; ``metrics`` is its ``metrics.json``
    (empty when there is none). ``exact`` is False for a VAE, whose bits/dim come from its
    ELBO, a bound.
    """

    path: Path
    key: str
    group: str  # the folder of run folders it sits in ("images-quick"), or "" for a lone run
    model: str
    dataset: str
    bits: int
    latent_dim: int
    exact: bool
    source: str
    experiment: str = "images"  # or "anomaly" (Table 4's MNIST 8-bit models)
    preset: str = ""
    metrics: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def checkpoint(self):
        return self.path / CHECKPOINT_NAME

    @property
    def stamp(self):
        """(modification time, size) of the checkpoint: changes when a run is retrained in place."""
        return _stat(self.checkpoint)

    @property
    def data_dim(self):
        return math.prod(DATA_SHAPES.get(self.dataset, (0,)))

    @property
    def evaluation(self):
        return self.metrics.get("evaluation") or {}

    @property
    def bpd(self):
        """Test bits/dim (an anomaly run: on held-out MNIST), or None when not evaluated."""
        return self.evaluation.get("bpd", self.evaluation.get("mnist"))

    @property
    def bpd_2se(self):
        return self.evaluation.get("bpd_2se", self.evaluation.get("mnist_2se"))

    @property
    def parameters(self):
        return self.metrics.get("parameters")

    @property
    def training(self):
        return self.metrics.get("training") or {}

    @property
    def _data_records(self):
        """The training data's records in ``metrics.json`` (``describe.data``), or []."""
        return (self.metrics.get("describe") or {}).get("data") or []

    @property
    def data_name(self):
        """The training data as its run names it (stand-ins labelled), else the data set's name."""
        records = self._data_records
        return records[0]["name"] if records else DATASET_NAMES.get(self.dataset, self.dataset)

    @property
    def stand_in(self):
        return any(r.get("stand_in") for r in self._data_records)

    @property
    def data_note(self):
        """The training data, said to be a stand-in (and for what) where it is one."""
        records = self._data_records
        if not records or not records[0].get("stand_in"):
            return self.data_name
        role = records[0].get("role") or ""
        instead = f" for {role.removeprefix('in place of ')}" if role.startswith("in place of ") else ""
        return f"{self.data_name}, a stand-in{instead}"

    @property
    def training_line(self):
        """One line of how the model was trained: steps (and batch; the stages of a run extended with
        ``--extend``), minutes (the Trainer's clock, all stages), data; None without a record."""
        return training_sentence(self.training, self.data_note)

    @property
    def label(self):
        """One line for a menu: model, data, latent size, where it came from."""
        name = MODEL_NAMES.get(self.model, self.model)
        data = f"{DATASET_NAMES.get(self.dataset, self.dataset)} {self.bits}-bit"
        latent = f"latent {self.latent_dim:,}"
        where = f"{self.source}: {self.group or self.path.name}"
        return f"{name} · {data} · {latent} · {'exact' if self.exact else 'bound'} · {where}"

    @property
    def remake(self):
        """A command that makes this run again."""
        command = (self.metrics.get("describe") or {}).get("command")
        if command:
            return command
        preset = self.preset or "quick"
        result = {"images": "table2", "table4": "table4"}.get(self.group.rsplit("-", 1)[0])
        if result:  # a folder of `funnelkit reproduce` (images-quick, table4-quick)
            return f"funnelkit reproduce {result} --preset {preset} --runs runs"
        if self.experiment == "anomaly":
            latent = "" if self.model == "nsf" else f" --latent-size {self.latent_dim}"
            return f"funnelkit train anomaly --model {self.model}{latent} --preset {preset}"
        return f"funnelkit train images --model {self.model} --dataset {self.dataset} --bits {self.bits} --preset {preset}"


@dataclass
class Gallery:
    """The image runs found, the problems met (one line each), and the folders searched."""

    runs: list
    problems: list
    folders: list

    def get(self, key):
        """The run named ``key``; a ValueError naming the runs there are otherwise."""
        for run in self.runs:
            if run.key == key:
                return run
        known = ", ".join(repr(r.key) for r in self.runs) or "none (no image runs were found)"
        raise ValueError(f"unknown image run {key!r}; expected one of {known}")

    def default(self):
        """The run a first visit shows: the first F-NSF, else the first run, else None."""
        return next((r for r in self.runs if r.model == "f-nsf"), self.runs[0] if self.runs else None)

    def comparisons(self):
        return comparisons(self.runs)


def run_folders():
    """The folders searched for runs: ``FUNNELKIT_APP_RUNS`` if set, else data/runs and runs/."""
    value = os.environ.get(RUNS_ENV)
    if value is not None:
        return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]
    return [SHIPPED_RUNS, USER_RUNS]


def find_image_runs(folders=None):
    """Every image run in ``folders`` (default :func:`run_folders`), as a :class:`Gallery`.

    A run folder holds ``checkpoint.pt`` (and normally ``metrics.json``) and sits in a folder
    of ``folders`` or one or two levels below (``runs/images-quick/<run>``, ``runs/<run>``).
    A folder that is not there is only listed in ``Gallery.folders``. Runs that are not image
    models are skipped. A run whose checkpoint is missing or damaged, or whose model cannot be
    told, is left out and described in ``Gallery.problems``. A run that is a copy of one
    found before (same model, training time and test numbers: ``use_shipped`` copies the
    shipped runs into ``runs/``, and a shipped run is a slimmed copy of a run) is left out.
    """
    folders = [Path(f) for f in (run_folders() if folders is None else folders)]
    runs, problems, seen, keys = [], [], set(), set()
    for root in folders:
        if not root.is_dir():
            continue
        source = "shipped" if _same(root, SHIPPED_RUNS) else "your runs"
        prefix = "shipped" if source == "shipped" else root.name
        for folder in _run_folders(root):
            try:
                run = _describe(folder, root, source, prefix)
            except (CheckpointError, OSError, ValueError) as error:
                problems.append(str(error))
                continue
            if run is None:
                continue
            fingerprint = _fingerprint(run)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            key = run.key
            for i in range(2, 1000):
                if key not in keys:
                    break
                key = f"{run.key}~{i}"
            keys.add(key)
            runs.append(replace(run, key=key))
    runs.sort(key=run_order)
    return Gallery(runs, problems, folders)


def _same(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _run_folders(root):
    """Folders at depth 0 to 2 under ``root`` holding a checkpoint or a metrics.json."""
    found = set()
    for name in (CHECKPOINT_NAME, METRICS_NAME):
        for pattern in (name, f"*/{name}", f"*/*/{name}"):
            found.update(p.parent for p in root.glob(pattern))
    return sorted(found)


def _describe(folder, root, source, prefix):
    """The :class:`ImageRun` of ``folder`` (read by :func:`funnelkit.runs.describe_run`); None for a
    run that is not an image model. A run whose metrics or checkpoint do not say its data set and
    bits is a ValueError (never guessed)."""
    relative = folder.relative_to(root).as_posix()
    group = folder.parent.name if folder.parent != root and folder != root else ""
    checkpoint = folder / CHECKPOINT_NAME
    if (folder / METRICS_NAME).is_file():
        run = describe_run(folder)
        if run.builder not in IMAGE_BUILDERS:
            return None  # a tabular or four-circles run (or another model)
        if not checkpoint.is_file():
            how = f"`{run.command}`" if run.command else "the command that made it"
            raise CheckpointError(f"{folder}: no {CHECKPOINT_NAME} beside its {METRICS_NAME} (deleted?); make it "
                                  f"again with {how}, or delete the folder")
        problem = _archive_problem(str(checkpoint), *_stat(checkpoint))
        if problem:
            raise CheckpointError(f"{checkpoint} is damaged ({problem}); it cannot be loaded")
    else:  # no metrics.json (e.g. an interrupted run): the checkpoint tells the model
        run = describe_run(folder, read_checkpoint(checkpoint))
        if run.builder not in IMAGE_BUILDERS:
            return None
    if run.model not in MODEL_NAMES:
        raise ValueError(f"{folder}: unknown image model {run.model!r}; expected one of {', '.join(MODEL_NAMES)}")
    if run.dataset not in DATA_SHAPES or run.bits is None:
        raise ValueError(f"{folder}: its model config names no known data set and bits (dataset {run.dataset!r}, "
                         f"bits {run.bits!r}); expected one of {', '.join(DATA_SHAPES)} and 5 or 8 bits")
    latent = run.latent_dim
    if latent is None:  # a checkpoint without metrics: the model's latent size from its config
        latent = math.prod(DATA_SHAPES[run.dataset]) if run.model == "nsf" else run.config.get("latent_size", 0)
    return ImageRun(folder, f"{prefix}/{relative}" if relative != "." else prefix, group, run.model, run.dataset,
                    int(run.bits), int(latent), run.exact, source, IMAGE_BUILDERS[run.builder], run.preset or "",
                    run.metrics)


def _stat(path):
    stat = Path(path).stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=256)
def _archive_problem(path, mtime_ns, size):
    """Why a checkpoint (torch's zip format) is damaged, or None; checks every member's CRC.

    Cached per (path, modification time, size): a rescan costs nothing for unchanged files.
    A file in torch's old, non-zip format is left to :func:`read_checkpoint`.
    """
    try:
        if not zipfile.is_zipfile(path):
            read_checkpoint(path)
            return None
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        return None if bad is None else f"{bad} fails its checksum"
    except CheckpointError as error:
        return str(error)
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"


def _fingerprint(run):
    """Two folders with the same model, training and test numbers hold the same trained run (a
    copy, shipped or not: ``metrics.json`` is copied with it; the wall time of training alone
    tells runs apart). A run without stored numbers is its own."""
    training, evaluation = run.training, run.evaluation
    if not evaluation or training.get("train_seconds") is None:
        return ("folder", str(run.path))
    return (json.dumps(run.metrics.get("model"), sort_keys=True), json.dumps(evaluation, sort_keys=True),
            training.get("steps"), training.get("train_seconds"))


__all__ = ["Gallery", "ImageRun", "MAKE_RUNS", "RUNS_ENV", "USER_RUNS", "find_image_runs", "run_folders"]
