"""Training the kit's digit classifier on the 9,000 MNIST training digits of the image results.

The data is the offline MNIST (``data/mnist-train-first10k.npz``, the first 10,000 training
digits) cut by the image results' own split (:func:`funnelkit.experiments.runs.held_out_split`
with Table 2's ``SPLIT_SEED``): the classifier trains on the 9,000 digits the image models train
on and never sees the 1,000 held-out digits, the default reference of the digit metric.

Cross-entropy with Adam and a cosine learning-rate decay; each training digit is shifted by up to
``shift`` pixels in x and y (zeros come in at the edge), so the features do not hinge on a digit's
exact place. Batches and shifts are drawn by one seeded generator on one CPU thread: a seeded run
gives the same weights on the same machine and torch version. About a minute or two.
"""

import time
import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..data.images import OfflineDataWarning, image_dataset
from ..files import write_atomically
from .classifier import DigitClassifier, check_digits

HELD_OUT = 1000  # the image results' held-out digits (Table 2's quick ``held_out``)


@dataclass(frozen=True)
class ClassifierSettings:
    """How the shipped classifier was trained (the defaults are what made ``data/digit-classifier.pt``)."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    shift: int = 2  # pixels, at most, in x and in y
    seed: int = 0


def shifted(images, shift, generator):
    """Each uint8 digit moved by its own random offset in [-shift, shift]^2 (zeros fill the edge)."""
    if shift == 0:
        return images
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def mnist_digits_split():
    """``(train_images, train_labels, held_images, held_labels)``: the offline MNIST cut as the image
    results cut it (9,000 for training, the 1,000 held out, Table 2's split seed); uint8 (N, 1, 28, 28)."""
    from ..experiments.runs import held_out_split  # here, not on top: the experiments import this package
    from ..experiments.image_runs import SPLIT_SEED

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDataWarning)  # asked for: the same data on every machine
        data = image_dataset("mnist", "train", prefer_offline=True)
    train, held = held_out_split(len(data), HELD_OUT, SPLIT_SEED)
    return data.images[train], data.labels[train], data.images[held], data.labels[held]


def held_out_digits():
    """The 1,000 held-out real digits, uint8 (1000, 1, 28, 28): the digit metric's default reference."""
    return mnist_digits_split()[2]


@torch.no_grad()
def accuracy(model, images, labels, batch_size=1000):
    """The fraction of ``images`` (uint8 digits) whose largest logit is their label."""
    check_digits(images)
    model.eval()
    hits = sum(int((model(chunk).argmax(1) == target).sum())
               for chunk, target in zip(images.split(batch_size), labels.split(batch_size)))
    return hits / len(images)


def train_classifier(settings=ClassifierSettings(), progress=False):
    """Train a :class:`DigitClassifier` on the 9,000 training digits; ``(model, record)`` where the
    record holds the settings, the held-out accuracy and the seconds it took."""
    train_images, train_labels, held_images, held_labels = mnist_digits_split()
    torch.manual_seed(settings.seed)
    model = DigitClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    steps = settings.epochs * -(-len(train_images) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    generator = torch.Generator().manual_seed(settings.seed)
    started = time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(train_images), generator=generator)
        for rows in order.split(settings.batch_size):
            batch = shifted(train_images[rows], settings.shift, generator)
            loss = F.cross_entropy(model(batch), train_labels[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if progress:
            print(f"epoch {epoch + 1}/{settings.epochs}: last batch loss {loss.item():.4f}, held-out accuracy "
                  f"{accuracy(model, held_images, held_labels):.4f}", flush=True)
    model.eval().requires_grad_(False)
    record = {"settings": asdict(settings), "train_digits": len(train_images), "held_out_digits": len(held_images),
              "held_out_accuracy": accuracy(model, held_images, held_labels),
              "train_accuracy": accuracy(model, train_images, train_labels),
              "seconds": time.perf_counter() - started, "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in model.parameters())}
    return model, record


def save_classifier(model, path):
    """Write ``model``'s state_dict to ``path`` atomically (a plain dict of tensors, for weights_only)."""
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    return write_atomically(path, lambda file: torch.save(state, file))
