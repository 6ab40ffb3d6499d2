"""The one owner of run folders: what a run folder holds, and how it is written, read, described and checked.

A run folder (made by ``funnelkit train``, ``funnelkit reproduce`` or ``funnelkit ship``) holds

* ``checkpoint.pt``: the model, its config and the trainer's state (:mod:`funnelkit.checkpoints`);
* ``metrics.json``: what the run is and what it gave, in format :data:`FORMAT` (below);
* ``evaluation.pt`` (when the evaluation has per-example values): those values.

``metrics.json``, format 1::

    format         1
    finished       true once the last step is trained and evaluated
    experiment     "four-circles", "tabular", "images" or "anomaly" (null: a model of no experiment)
    result         the `funnelkit reproduce` result that made it ("table2", ...), or null
    model          the model's config (builder, name, preset, dataset, bits, latent_size, ...)
    parameters, latent_dim, exact
    status         how the last write got it: trained, resumed, extended, loaded
    training       steps (the total), config (the TrainConfig), seconds_per_step, train_seconds,
                   final_train_loss, final_validation_loss, extensions: [{from_step, to_step,
                   finished, generator_seed, command}] (see "extensions" below)
    evaluation_key the settings of the evaluation; evaluation: its numbers
    describe       optional: data (records of the data used), command, settings, stand_in

Folders written before the format existed (no ``format`` key) are read through
:func:`translate_legacy`, here and nowhere else: train_or_load's older files (the same keys without
``format``, ``experiment``, ``result`` and ``training.extensions``) and four circles' flat files
(``model`` a name, the test numbers at the top level).

Checks. :func:`plan_run` decides what a training call does in a folder: train (no run there),
load (the same run, finished), resume (the same run, interrupted) or extend, and refuses a folder
whose run has other settings before anything is written (:class:`RunMismatch`, one line naming the
setting, its stored and asked values and the way out). Training settings compare field by field,
forward-compatibly: a field missing from a stored config counts as the field's default, and one
this version does not know is ignored; how often to validate and checkpoint follows the steps (an
extension takes the asked values).

Extensions (``funnelkit train ... --steps N --extend``): ``N`` is the new *total* of steps, so the
same command run twice extends once, and an interrupted extension resumes when run again. An
extension continues a finished run from its last step ``S`` to ``N`` with the stored weights, a
fresh Adam, a fresh learning-rate schedule over the ``N - S`` new steps and a fresh data stream
(seeded by :func:`extension_seed` from the run's seed and the extension's number; a shipped run,
which keeps no optimiser or generator state, extends exactly as the run it was copied from).

Every write of a run folder holds its lock (:func:`funnelkit.locks.folder_lock`).
"""

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch

from .checkpoints import CHECKPOINT_NAME, current_config, read_checkpoint
from .files import write_atomically
from .locks import folder_lock
from .train import TrainConfig

METRICS_NAME = "metrics.json"
EVALUATION_NAME = "evaluation.pt"
FORMAT = 1
#: The experiment of a model, from its config's builder.
EXPERIMENT_OF_BUILDER = {"plane": "four-circles", "tabular": "tabular", "image": "images", "anomaly": "anomaly"}
#: What the messages call a model-config key, and the option that sets it.
MODEL_SETTINGS = {"name": ("model", "--model"), "preset": ("preset", "--preset"), "dataset": ("dataset", "--dataset"),
                  "bits": ("bits", "--bits"), "latent_size": ("latent size", "--latent-size"), "data": ("data", None)}
#: Training fields that only say how often to validate and checkpoint; they follow the steps.
_FOLLOW_STEPS = ("eval_every", "checkpoint_every")
_FOUR_CIRCLES_NUMBERS = ("test_points", "test_seed", "model_ll", "model_ll_2se", "true_ll", "true_ll_2se", "gap",
                         "gap_2se")
_OTHER_FOLDER = "use another folder (train --out, reproduce --runs) for a run with other settings"


class RunMismatch(ValueError):
    """A run folder holds a run made with other settings (``setting``, ``stored``, ``asked``)."""

    def __init__(self, message, setting=None, stored=None, asked=None):
        super().__init__(message)
        self.setting, self.stored, self.asked = setting, stored, asked


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunDescription:
    """What a run folder (or checkpoint file) holds, read from its ``metrics.json`` (else its checkpoint).

    ``steps`` is the planned total of training steps, ``step`` those trained so far (None when
    unknown); ``data`` the records of the data used; ``legacy`` True when the metrics were written
    before format 1 (or came from the checkpoint alone). ``metrics`` is the ``metrics.json`` in
    format 1 (translated when legacy).
    """

    path: Path
    experiment: str = None
    result: str = None
    model: str = None
    builder: str = None
    preset: str = None
    seed: int = 0
    dataset: str = None
    bits: int = None
    latent_size: int = None
    latent_dim: int = None
    parameters: int = None
    exact: bool = True
    steps: int = None
    step: int = None
    finished: bool = False
    extensions: tuple = ()
    data: tuple = ()
    stand_in: bool = False
    root: str = None
    command: str = None
    legacy: bool = False
    metrics: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def config(self):
        """The model's config (a dict)."""
        return self.metrics.get("model") or {}

    @property
    def evaluation(self):
        """The stored test numbers (empty when none)."""
        return self.metrics.get("evaluation") or {}

    @property
    def training(self):
        return self.metrics.get("training") or {}


def training_sentence(training, data):
    """One line of how a model was trained, from a ``metrics.json``'s ``training`` record: steps (and batch;
    the stages of a run extended with ``--extend``), minutes (the Trainer's clock, all stages) and ``data``
    (words naming the training data); None without a record of steps."""
    steps = training.get("steps")
    if not steps:
        return None
    batch = (training.get("config") or {}).get("batch_size")
    extensions = training.get("extensions") or []
    stages = f" ({len(extensions) + 1} stages)" if extensions else ""
    seconds = training.get("train_seconds")
    minutes = f"{seconds / 60:.1f}" if seconds and seconds < 600 else f"{(seconds or 0) / 60:,.0f}"
    took = f" in {minutes} minutes" if seconds else ""
    return f"Trained {steps:,} steps" + (f" of batch {batch}" if batch else "") + f"{stages}{took} on {data}."


def folder_of(path):
    """The run folder of a run folder or of a checkpoint file in one."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def read_metrics(folder):
    """The ``metrics.json`` of ``folder`` in format 1 (a legacy one translated), or None when absent.

    A file that is not a JSON object is a ValueError naming it.
    """
    path = Path(folder) / METRICS_NAME
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not readable JSON ({type(error).__name__}: {str(error)[:200]}); "
                         "delete it and load or train the run again to rewrite it") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} holds {type(metrics).__name__}, expected a JSON object (the metrics of a run)")
    return translate_legacy(metrics)


def metrics_unchanged(folder, metrics):
    """Whether ``folder/metrics.json`` already holds ``metrics`` as written, in the current format
    (its ``status`` aside): then loading a finished run need not rewrite it. A legacy, missing or
    unreadable file counts as changed."""
    try:
        stored = json.loads((Path(folder) / METRICS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        return False
    strip = lambda m: {k: v for k, v in m.items() if k != "status"}  # noqa: E731
    return strip(stored) == strip(metrics)


def translate_legacy(metrics, payload=None):
    """``metrics`` (a ``metrics.json`` of any format, or a checkpoint's metrics) in format 1.

    The one place that knows older layouts. ``payload`` (a checkpoint's) fills in what a legacy
    file does not say (the model config, the trainer's steps).
    """
    if not isinstance(metrics, dict):
        raise ValueError(f"expected the metrics of a run as a dict, got {type(metrics).__name__}")
    version = metrics.get("format")
    if version is not None and version != FORMAT:
        if isinstance(version, int) and version > FORMAT:
            raise ValueError(f"metrics.json is in format {version}, newer than this funnelkit reads ({FORMAT}): "
                             "update funnelkit")
        raise ValueError(f"metrics.json has format {version!r}; expected {FORMAT} or none (a legacy file)")
    out = dict(metrics)
    payload = payload or {}
    trainer = payload.get("trainer") or {}
    if not isinstance(out.get("model"), dict):  # four circles' flat file, or a checkpoint's metrics
        config = dict(payload.get("config") or {})
        if not config and isinstance(out.get("model"), str):
            config = {"builder": "plane", "name": out["model"], "preset": out.get("preset"), "data": "four-circles"}
        numbers = {k: v for k, v in metrics.items() if k in _FOUR_CIRCLES_NUMBERS}
        numbers = numbers or {k: v for k, v in metrics.items() if k not in _TRAINER_METRICS}
        train_config = metrics.get("train_config") or trainer.get("config")
        steps = metrics.get("steps", (train_config or {}).get("steps"))
        finished = bool(metrics.get("finished", "model_ll" in metrics))
        out = {
            "finished": finished,
            "experiment": metrics.get("experiment"),
            "model": config,
            "parameters": metrics.get("parameters"),
            "status": "trained",
            "training": {"steps": steps, "config": train_config, "train_seconds": metrics.get("train_seconds")},
            "evaluation_key": ({"test_points": numbers["test_points"], "test_seed": numbers["test_seed"]}
                               if "test_points" in numbers and "test_seed" in numbers else None),
            "evaluation": numbers,
        }
    out["format"] = FORMAT
    if "model" in out:
        out["model"] = current_config(out["model"])  # a model's settings under today's names
    config = out.get("model") or {}
    out["experiment"] = out.get("experiment") or (out.get("describe") or {}).get("experiment") \
        or EXPERIMENT_OF_BUILDER.get(config.get("builder"))
    out.setdefault("result", None)
    training = dict(out.get("training") or {})
    training.setdefault("extensions", [])
    out["training"] = training
    first = {"format": FORMAT, "finished": bool(out.get("finished")), "experiment": out["experiment"],
             "result": out["result"]}
    return {**first, **{k: v for k, v in out.items() if k not in first}}


_TRAINER_METRICS = ("finished", "step", "steps", "train_nll", "eval_nll", "best_step", "best_eval_nll")


def describe_run(path, payload=None):
    """The :class:`RunDescription` of a run folder or checkpoint file.

    Reads ``metrics.json`` when the folder has one (a checkpoint file of another name, e.g. a
    user's ``fk.save_checkpoint("my.pt", model)``, has none), else the checkpoint (``payload`` if given). A missing
    or damaged checkpoint without a ``metrics.json`` raises (FileNotFoundError, CheckpointError).
    """
    path = Path(path)
    folder = folder_of(path)
    in_folder = path.is_dir() or path.name == CHECKPOINT_NAME
    metrics = read_metrics(folder) if in_folder else None
    legacy = False
    if metrics is None:
        payload = payload if payload is not None else read_checkpoint(path)
        metrics = translate_legacy(payload.get("metrics") or {}, payload)
        legacy = True
    else:
        raw = json.loads((folder / METRICS_NAME).read_text(encoding="utf-8"))
        legacy = raw.get("format") is None
    return description_of(metrics, path, payload, legacy)


def description_of(metrics, path, payload=None, legacy=False):
    """The :class:`RunDescription` of format-1 ``metrics`` (and a checkpoint ``payload``, optional)."""
    config = metrics.get("model") or {}
    training = metrics.get("training") or {}
    train_config = training.get("config") or ((payload or {}).get("trainer") or {}).get("config") or {}
    describe = metrics.get("describe") or {}
    settings = describe.get("settings") or {}
    builder = config.get("builder")
    experiment = metrics.get("experiment")
    dataset = config.get("dataset") if builder in ("image", "tabular") else \
        {"anomaly": "mnist", "plane": "four-circles"}.get(builder)
    bits = config.get("bits") if builder == "image" else (8 if builder == "anomaly" else None)
    records = describe.get("data") or []
    records = [records] if isinstance(records, dict) else list(records)
    trainer = (payload or {}).get("trainer") or {}
    return RunDescription(
        path=Path(path), experiment=experiment, result=metrics.get("result"), model=config.get("name"),
        builder=builder, preset=config.get("preset"), seed=int(train_config.get("seed", settings.get("seed")) or 0),
        dataset=dataset, bits=None if bits is None else int(bits),
        latent_size=config.get("latent_size") if builder == "anomaly" and config.get("name") != "nsf" else None,
        latent_dim=metrics.get("latent_dim"), parameters=metrics.get("parameters"),
        exact=bool(metrics.get("exact", config.get("name") != "vae")),
        steps=training.get("steps", train_config.get("steps")), step=trainer.get("step"),
        finished=bool(metrics.get("finished")), extensions=tuple(training.get("extensions") or ()),
        data=tuple(records), stand_in=bool(describe.get("stand_in", any(r.get("stand_in") for r in records))),
        root=settings.get("root"), command=describe.get("command"), legacy=legacy, metrics=metrics)


def read_evaluation(folder):
    """The per-example tensors of ``folder/evaluation.pt`` (an empty dict when there is none)."""
    path = Path(folder) / EVALUATION_NAME
    if not path.is_file():
        return {}
    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def metrics_text(metrics):
    """``metrics`` (format 1: the ``format`` key first) as the text of ``metrics.json``."""
    metrics = {"format": FORMAT, **{k: v for k, v in metrics.items() if k != "format"}}
    return json.dumps(metrics, indent=2, allow_nan=False) + "\n"


def write_metrics(folder, metrics):
    """Write ``folder/metrics.json`` (format 1) atomically, holding the folder's lock."""
    text = metrics_text(metrics)
    with folder_lock(folder):
        return write_atomically(Path(folder) / METRICS_NAME, lambda file: file.write(text.encode("utf-8")))


def write_evaluation(folder, arrays):
    """Write the per-example tensors ``arrays`` to ``folder/evaluation.pt`` atomically (under the lock)."""
    with folder_lock(folder):
        return write_atomically(Path(folder) / EVALUATION_NAME, lambda file: torch.save(dict(arrays), file))


def migrate(folder, result=None):
    """Rewrite a legacy ``metrics.json`` of ``folder`` in format 1 (``result``: the reproduce result
    that made it, when known). Returns True when the file was rewritten; weights are never touched."""
    path = Path(folder) / METRICS_NAME
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("format") == FORMAT and (result is None or raw.get("result") == result):
        return False
    metrics = translate_legacy(raw, read_checkpoint(folder) if not isinstance(raw.get("model"), dict) else None)
    if result is not None:
        metrics["result"] = result
    write_metrics(folder, metrics)
    return True


# --------------------------------------------------------------------------------------------
# Checking: what a training call does in a folder
# --------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """What :func:`plan_run` decided: ``action`` is "train", "load", "resume" or "extend".

    ``payload`` is the checkpoint's, ``stored`` the ``metrics.json`` (format 1) or None, and
    ``from_step`` the step an extension starts from.
    """

    action: str
    payload: dict = None
    stored: dict = None
    from_step: int = None


def plan_run(folder, model_config, config, extend=False):
    """What training ``model_config`` with ``config`` (a TrainConfig) in ``folder`` does; refuses a
    folder that holds another run (:class:`RunMismatch`) before anything is written.

    ``extend``: a finished run with fewer steps is continued to ``config.steps`` (see the module).
    """
    folder = Path(folder)
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.is_file():
        return Plan("train")
    payload = read_checkpoint(checkpoint)
    stored = read_metrics(folder)
    trainer = payload.get("trainer") or {}
    saved = trainer.get("config")
    if not isinstance(saved, dict):
        raise RunMismatch(f"the folder {folder} holds a checkpoint without training state (saved by hand, not by a "
                          f"training run): {_OTHER_FOLDER}")
    check_model(folder, payload.get("config") or {}, dict(model_config))
    asked = asdict(config)
    check_training(folder, saved, asked, skip=("steps", *_FOLLOW_STEPS))
    stored_steps, step = _field(saved, "steps"), trainer.get("step")
    if stored_steps == config.steps:
        check_training(folder, saved, asked, only=_FOLLOW_STEPS)
        finished = bool(stored and stored.get("finished") and step == config.steps
                        and (stored.get("training") or {}).get("steps") == config.steps)
        return Plan("load" if finished else "resume", payload, stored)
    done = step == stored_steps
    if not extend:
        way = (f"; or add --extend (train --steps {config.steps} --extend) to train the finished run on to "
               f"{config.steps:,} steps with a fresh learning-rate schedule"
               if done and config.steps > stored_steps else
               f"; or give --steps {stored_steps} to {'load' if done else 'resume'} it")
        raise RunMismatch(f"the run folder {folder} holds another run: its steps are {stored_steps:,}, this asks for "
                          f"{config.steps:,}. {_OTHER_FOLDER[0].upper()}{_OTHER_FOLDER[1:]}{way}",
                          "steps", stored_steps, config.steps)
    if not done:
        raise RunMismatch(f"the run in {folder} stopped at step {step:,} of {stored_steps:,}, so there is no finished "
                          f"run to extend: finish it first (train --steps {stored_steps}, without --extend), then "
                          "extend it", "steps", stored_steps, config.steps)
    if config.steps < stored_steps:
        raise RunMismatch(f"the run in {folder} has trained {stored_steps:,} steps; --extend cannot shorten it to "
                          f"{config.steps:,}: give --steps above {stored_steps} to extend it, or "
                          f"{_OTHER_FOLDER}", "steps", stored_steps, config.steps)
    return Plan("extend", payload, stored, from_step=stored_steps)


def check_model(folder, stored, asked):
    """Refuse (:class:`RunMismatch`) when the stored model config differs from the asked one in any key."""
    order = [k for k in MODEL_SETTINGS if k in stored or k in asked]
    order += sorted((set(stored) | set(asked)) - set(order))
    for key in order:
        if stored.get(key, MISSING) != asked.get(key, MISSING):
            what, option = MODEL_SETTINGS.get(key, (f"model setting {key}", None))
            _refuse(folder, what, stored.get(key, "(not set)"), asked.get(key, "(not set)"), option)


def check_training(folder, stored, asked, skip=(), only=None):
    """Refuse when a training setting differs: seed first, then the rest in TrainConfig's order.

    A field missing from ``stored`` counts as the field's default; a stored field this version
    does not know is ignored.
    """
    names = [f.name for f in fields(TrainConfig)]
    names = ["seed"] + [n for n in names if n != "seed"]
    for name in names:
        if name in skip or (only is not None and name not in only) or name not in asked:
            continue
        if _field(stored, name) != asked[name]:
            what = name if name in ("seed", "steps") else f"training setting {name}"
            _refuse(folder, what, _field(stored, name), asked[name], "--seed" if name == "seed" else None)


def _field(stored, name):
    """A stored TrainConfig field, or its default when the stored config predates it."""
    if name in stored:
        return stored[name]
    spec = next(f for f in fields(TrainConfig) if f.name == name)
    return spec.default if spec.default is not MISSING else spec.default_factory()


def _refuse(folder, what, stored, asked, option):
    verb = "are" if what.endswith("s") and not what.startswith(("model setting", "training setting")) else "is"
    through = f" ({option})" if option else ""
    raise RunMismatch(f"the run folder {folder} holds another run: its {what} {verb} {stored!r}, this asks for "
                      f"{asked!r}{through}. {_OTHER_FOLDER[0].upper()}{_OTHER_FOLDER[1:]}, or delete that folder "
                      "to train anew", what, stored, asked)


def extension_seed(seed, number):
    """The data and noise seed of a run's ``number``-th extension (1, 2, ...): fixed by the run's seed."""
    digest = hashlib.sha256(f"funnelkit extension {int(seed)} {int(number)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def extension_state(trainer, payload, from_step, number):
    """The trainer state an extension starts from: step ``from_step`` of the stored run, the
    trainer's fresh optimiser, a fresh schedule over the new steps, a fresh seeded data stream."""
    stored = payload.get("trainer") or {}
    config = trainer.config
    seed = extension_seed(config.seed, number)
    scheduler = None
    if trainer.scheduler is not None:
        fresh = torch.optim.lr_scheduler.CosineAnnealingLR(torch.optim.Adam(trainer.model.parameters(), lr=config.lr),
                                                           config.steps - from_step, config.eta_min)
        scheduler = fresh.state_dict()
    return {
        "step": from_step,
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": scheduler,
        "generator": torch.Generator().manual_seed(seed).get_state(),
        "torch_rng": torch.Generator().manual_seed(seed + 1).get_state(),
        "cuda_rng": [],
        "seconds": float(stored.get("seconds", 0.0)),
        "history": {k: list(v) for k, v in (stored.get("history") or
                                            {"step": [], "loss": [], "eval_step": [], "eval_loss": []}).items()},
        "best": stored.get("best"),
    }, seed


__all__ = ["EVALUATION_NAME", "EXPERIMENT_OF_BUILDER", "FORMAT", "METRICS_NAME", "Plan", "RunDescription",
           "RunMismatch", "check_model", "check_training", "describe_run", "description_of", "extension_seed",
           "extension_state", "folder_of", "metrics_text", "migrate", "plan_run", "read_evaluation", "read_metrics",
           "training_sentence", "translate_legacy", "write_evaluation", "write_metrics"]
