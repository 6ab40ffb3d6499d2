"""The command line: ``funnelkit train|eval|sample|reproduce|models|ship|digits``.

A thin parser: every experiment trains, evaluates, samples and reproduces through
:mod:`funnelkit.experiments.commands`; :mod:`.printing` words what is printed and :mod:`.pictures`
draws what ``sample`` writes; run folders are read, described and checked by :mod:`funnelkit.runs`.
Here: the options, their one-line errors, the exit codes and the signals. The library is imported
inside each command's function, so that ``funnelkit --help`` and ``funnelkit models`` do not load
what they do not use.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import torch

from .. import distributed
from ..checkpoints import CHECKPOINT_NAME, CheckpointError
from ..device import pick_device
from ..digits.training import ClassifierSettings, save_classifier, train_classifier
from ..experiments import DESCRIPTIONS, commands, shipped
from ..experiments.runs import EVALUATION_NAME, METRICS_NAME
from ..files import DISK_ERRNOS
from ..models.table import FAMILIES, format_model_table, model_table
from ..models.tempering import check_sampling_temperature, check_temper
from ..train import Speed, speed_settings
from .pictures import check_png, save_samples
from .printing import format_eval, format_sample, format_train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funnelkit", description="Funnels: exact maximum likelihood with dimensionality reduction.")
    subcommands = parser.add_subparsers(dest="command", required=True)

    train = subcommands.add_parser(
        "train", help="train a model of an experiment",
        description=f"Train one model in a run folder: {CHECKPOINT_NAME}, {METRICS_NAME} (and, except for four-circles "
                    f"and tabular, {EVALUATION_NAME} with the per-example test values). An interrupted run in that folder is "
                    "resumed; a finished one is loaded, not trained again; a folder made with other settings (model, "
                    "preset, seed, data, bits, latent size, steps) is refused (exit 2) and left as it was. --steps N "
                    "--extend trains a finished run on to N steps in all, with a fresh learning-rate schedule.",
    )
    train.add_argument("experiment", help=f"one of: {', '.join(commands.EXPERIMENTS)}")
    train.add_argument("--model", default="f-nsf",
                       help="; ".join(f"{e}: {', '.join(commands.model_names(e))}" for e in commands.EXPERIMENTS)
                       + " (default f-nsf)")
    train.add_argument("--preset", default="quick", help="quick (laptop CPU), paper (the paper's text); four-circles "
                                                         "also authors-code; images (mnist, fashion-mnist) and "
                                                         "anomaly also classroom (about 30 min a model on a "
                                                         "laptop CPU)")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's); with --extend the new total")
    train.add_argument("--extend", action="store_true",
                       help="continue the finished run in --out to --steps N steps in all (N above its steps) with "
                            "a fresh learning-rate schedule; recorded in metrics.json; run again to resume it")
    train.add_argument("--seed", type=int, help="seed of the run (default 0)")
    train.add_argument("--out", help="run folder (default: runs/EXPERIMENT-[DATA-]MODEL-PRESET[-sSTEPS]); "
                                     "an existing run is resumed")
    train.add_argument("--device", default="auto",
                       help="auto, cpu, cuda or mps; under torchrun each process takes cuda:LOCAL_RANK (or the cpu), "
                            "and a model whose training pass draws random numbers (dropout, a VAE) is refused")
    train.add_argument("--amp", "--bf16", dest="amp", action="store_true",
                       help="bfloat16 autocast of the training forward pass (CUDA only; validation, test numbers and "
                            "sampling stay float32: funnelkit.train.training_autocast)")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the training loss (for a GPU: the first steps take the compilation; "
                            "make gpu-check measures whether it pays)")
    train.add_argument("--workers", type=int, default=0,
                       help="0 (default): the training loop draws each batch; 1: a DataLoader worker draws them "
                            "ahead, into pinned memory on CUDA (the same batches, the same run)")
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: the fastest for these small 2-D models)")
    train.add_argument("--dataset", help="; ".join(
        f"{e}: " + ", ".join(f"{d} (default)" if d == commands.DEFAULT_DATASET[e] else d for d in commands.datasets(e))
        for e in commands.DEFAULT_DATASET))
    train.add_argument("--bits", type=int, help="images: 5 (default) or 8 bits per colour")
    train.add_argument("--latent-size", type=int, help="anomaly: 16 (default) or 4")
    train.add_argument("--root", help="data folder: the unpacked MAF archive (tabular) or the image root "
                                      "(torchvision's layout); default: the kit's cache")
    train.add_argument("--download", action="store_true",
                       help="images, anomaly: let torchvision download MNIST, Fashion-MNIST or CIFAR-10 (md5-checked)")

    evaluate = subcommands.add_parser("eval", help="test numbers of a run (four circles: beside the true density)")
    evaluate.add_argument("run", help="a run folder or checkpoint file")
    evaluate.add_argument("--n", type=int, help="four-circles: fresh test points (default 100,000); others: "
                                                "evaluate the first N test examples (default: all)")
    evaluate.add_argument("--from-metrics", action="store_true",
                          help="print the numbers stored in the run's metrics.json instead of recomputing them")
    evaluate.add_argument("--root", help="data folder of the test data (default: the run's, else the kit's cache)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (four-circles: always the cpu)")

    sample = subcommands.add_parser("sample", help="draw samples from a run at a temperature and save a picture")
    sample.add_argument("run", help="a run folder or checkpoint file")
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="T, a finite number >= 0: the scale of the base noise, z ~ N(0, T^2 I) (paper Fig. 4)")
    sample.add_argument("--temper", default="base",
                        help="what T scales: base (default, the paper's: the base noise only; funnel and VAE "
                             "decoders sample at T = 1), all (the decoders' noise too), mean (the decoders give "
                             "their noise-free means)")
    sample.add_argument("--n", type=int, help="number of samples (default: four-circles 20,000, images 64, "
                                              "tabular 5,000)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help="the PNG file to write: a 2-D histogram (four-circles), "
                                                     "a grid of images, or a corner plot of the first 4 dimensions")
    sample.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (four-circles: always the cpu)")

    models = subcommands.add_parser("models", help="the table of every model: parameters, latent size, exact or bound")
    models.add_argument("--preset", default="paper", help="paper (default) or quick")
    models.add_argument("--family", nargs="+", action="extend",
                        help="some of: plane, tabular, image, anomaly (default: all; building the paper's image "
                             "models takes some seconds)")

    reproduce = subcommands.add_parser(
        "reproduce", help="reproduce a result of the paper",
        description="Train (or load) what a result needs, evaluate it, and write OUT/RESULT.json and OUT/RESULT.md "
                    "(the paper's numbers beside ours, the data named, stand-ins labelled) and its figures. "
                    "Training runs live in RUNS/RESULT-PRESET/...: an interrupted run resumes, a finished one is loaded.",
        epilog="results:\n" + "\n".join(f"  {name:8} {text}" for name, text in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reproduce.add_argument("result", help=f"one of: {', '.join(DESCRIPTIONS)}")
    reproduce.add_argument("--preset", default="quick", help="quick (a laptop CPU, minutes) or paper (the paper's data and settings); "
                                                              "table1, table2 (and what reuses it) and table4 also "
                                                              "classroom (a laptop CPU: minutes to 40 min a model)")
    reproduce.add_argument("--out", default="results", help="folder for figures and tables (default: results)")
    reproduce.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    reproduce.add_argument("--runs", help="folder of the training runs (default: runs)")
    reproduce.add_argument("--root", help="data folder: the unpacked MAF archive (table1) or the image root "
                                          "(torchvision's layout; default: the kit's cache)")
    reproduce.add_argument("--download", action="store_true",
                           help="let torchvision download MNIST, Fashion-MNIST or CIFAR-10 (md5-checked) when missing")
    reproduce.add_argument("--inception-weights", metavar="PATH",
                           help="torch-fidelity's Inception-v3 weights file for table3 (never downloaded)")
    reproduce.add_argument("--steps", type=int, help="training steps of every model (default: the preset's)")
    reproduce.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    reproduce.add_argument("--shipped", action="store_true",
                           help="first copy the kit's shipped runs (data/runs) into RUNS where missing, so the result "
                                "loads them instead of training: quick preset (Tables 1, 2, 4 and what reuses them) "
                                "or classroom (table1: data/runs/table1-classroom; table2, fig3, table3, fig4: "
                                "data/runs/images-classroom; table4: data/runs/table4-classroom)")

    ship = subcommands.add_parser(
        "ship", help="copy finished runs into data/runs without their optimiser state (the kit's shipped runs)",
        description="Copy every finished run of FOLDER (e.g. runs/images-quick) to TO/<FOLDER name>/<run>, keeping "
                    "the weights, configs, metrics and evaluation but not what only resuming needs. Notebooks and "
                    "the dashboard load these instead of training.")
    ship.add_argument("folder", help="a run folder, or a folder of run folders")
    ship.add_argument("--to", help="where the shipped runs go (default: the kit's data/runs)")
    ship.add_argument("--float16", action="store_true",
                      help="store the weights in float16 (half the size) where that moves no test number by more "
                           "than 0.005; each run is scored afresh and its copy records the new numbers")

    digits = subcommands.add_parser(
        "digits", help="the kit's digit metric: train its small MNIST classifier",
        description="digits train: train the small MNIST classifier whose 128-wide features give the kit's digit "
                    "metric (FID, KID, IS; funnelkit.digits) on the 9,000 training digits of the offline MNIST (the "
                    "1,000 held out by the image results kept apart), seeded, and write its state_dict to --out.")
    digits.add_argument("action", choices=["train"], help="train: make the classifier file")
    digits.add_argument("--out", default="data/digit-classifier.pt",
                        help="the file to write (default data/digit-classifier.pt, the one the kit loads)")
    digits.add_argument("--epochs", type=int, help="passes over the 9,000 digits (default 12)")
    digits.add_argument("--seed", type=int, help="seed of the weights, batches and shifts (default 0)")
    digits.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1: repeatable)")
    return parser


def _digits(args: argparse.Namespace) -> None:
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    torch.set_num_threads(args.threads)
    chosen = {k: v for k, v in {"epochs": args.epochs, "seed": args.seed}.items() if v is not None}
    model, record = train_classifier(ClassifierSettings(**chosen), progress=True)
    save_classifier(model, args.out)
    print(json.dumps(record, indent=1))
    print(f"wrote {args.out}: held-out accuracy {record['held_out_accuracy']:.4f} on {record['held_out_digits']:,} digits")


def _train(args: argparse.Namespace) -> None:
    spec = commands.make_spec(args.experiment, args.model, args.preset, args.dataset, args.bits, args.latent_size,
                              args.root, args.download, args.steps, args.seed)
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    if args.extend and args.steps is None:
        raise ValueError("--extend needs --steps N: the total number of steps to train the finished run on to")
    out = Path(args.out) if args.out else commands.default_out(spec)
    try:
        speed = Speed(compile=args.compile, workers=args.workers)  # how fast, not which run: not stored
    except ValueError as error:
        raise ValueError(f"--{error}") from None
    if args.experiment != "four-circles" and distributed.launched_by_torchrun():  # refused before anything is written
        distributed.check_exact(commands.build_model(spec), f"{args.experiment} {spec.model} ({spec.preset})")
    torch.set_num_threads(args.threads)
    with speed_settings(speed), distributed.session(args.device) as device:  # one process, or a rank of torchrun's
        main = distributed.is_main()
        if main and distributed.world_size() > 1:
            print(f"training on {distributed.world_size()} processes ({device.type}); rank 0 writes")
        run, data = commands.train(spec, out, device=device, progress=main, amp=args.amp, extend=args.extend)
    if main:
        print(format_train(run, data, spec))


def _eval(args: argparse.Namespace) -> None:
    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    model, spec, numbers, records, how = commands.evaluate_run(
        args.run, root=args.root, test_max=args.n, from_metrics=args.from_metrics, device=pick_device(args.device),
        progress=True)
    print(format_eval(model, spec, args.run, numbers, records, how))


def _sample(args: argparse.Namespace) -> None:
    # checked before anything is loaded or written: a bad mode, temperature or file ends as one line, exit 2
    temperature = _option(check_sampling_temperature, args.temperature, "--temperature")
    temper = _option(check_temper, args.temper, "--temper")
    out = check_png(args.out)
    samples, n, spec = commands.draw_samples(args.run, temperature, args.n, args.seed,
                                             device=pick_device(args.device), temper=temper)
    save_samples(samples, spec, out, temperature, temper)
    print(format_sample(out, n, spec, temperature, temper))


def _option(check, value, option: str):
    """``check(value)``, its error message naming the command-line ``option``."""
    try:
        return check(value)
    except ValueError as error:
        raise ValueError(f"{option}: {error}") from None


def _models(args: argparse.Namespace) -> None:
    print(format_model_table(model_table(args.preset, tuple(args.family or FAMILIES))), end="")


def _reproduce(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    options = {"root": args.root, "runs": args.runs, "inception_weights": args.inception_weights,
               "steps": args.steps, "download": args.download}
    commands.reproduce_options(args.result, args.preset, shipped=args.shipped, **options)  # all checked first
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.shipped:
        runs = args.runs or "runs"  # where the entries look by default
        print(f"copied {len(shipped.use_shipped(runs))} shipped run(s) into {runs}")
    markdown = commands.reproduce(args.result, preset=args.preset, out=args.out, device=args.device, **options)
    print(markdown.read_text())
    print(f"wrote {markdown.with_suffix('.json')} and {markdown}")


def _ship(args: argparse.Namespace) -> None:
    for run in shipped.ship(args.folder, args.to or shipped.SHIPPED_RUNS, float16=args.float16, progress=True):
        print(f"shipped {run}")


class _Stopped(BaseException):
    """A SIGTERM or SIGHUP, raised where the main thread was, so that ``finally`` blocks run."""

    def __init__(self, signal_number):
        super().__init__(signal_number)
        self.signal_number = signal_number


def _stop(signal_number, frame):
    signal.signal(signal_number, signal.SIG_DFL)  # a second signal while unwinding ends the process at once
    raise _Stopped(signal_number)


@contextmanager
def _signals_unwind():
    """While the command runs, SIGTERM and SIGHUP unwind the stack like Ctrl-C does (main thread only).

    The default action kills Python where it stands: a checkpoint's temporary file and the run
    folder's lock would stay behind. Raised as an exception, the signal runs every ``finally``.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) is not signal.SIG_IGN:  # nohup's stays ignored
                previous[number] = signal.signal(number, _stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _os_error_line(error):
    """One line for an OSError of the disk or of a path, or None for one that is a bug (let it show)."""
    where = f" {error.filename}" if error.filename is not None else ""
    if error.errno in DISK_ERRNOS:  # read-only, full, over quota, not allowed
        return f"cannot write{where}: {error.strerror}"
    if error.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG):
        return f"cannot use{where}: {error.strerror}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors of input, files and disks end as one line on stderr and exit 2.

    Ctrl-C ends with exit 130, SIGTERM with 143 (SIGHUP 129), after the normal unwinding: the
    run folder's lock is released and no temporary file is left.
    """
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "sample": _sample, "reproduce": _reproduce, "models": _models,
                "ship": _ship, "digits": _digits}
    try:
        with _signals_unwind():
            if getattr(args, "device", None) is not None:  # checked first, also where four circles ignore it
                pick_device(args.device)
            handlers[args.command](args)
    except (ValueError, FileNotFoundError, CheckpointError) as error:
        message = str(error)
        if isinstance(error, CheckpointError):  # torch's unpickling errors run to many lines: keep the first
            message = message.splitlines()[0]
        print(f"funnelkit {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        line = _os_error_line(error)
        if line is None:
            raise
        print(f"funnelkit {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"funnelkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Stopped as stop:
        print(f"funnelkit {args.command}: stopped by {signal.Signals(stop.signal_number).name}", file=sys.stderr)
        return 128 + stop.signal_number
    return 0


if __name__ == "__main__":
    sys.exit(main())
