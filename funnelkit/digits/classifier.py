"""The kit's small MNIST classifier, whose 128-wide features define the kit's digit metric.

Three 3x3 convolutions (16, 32, 32 channels, each followed by a ReLU and a 2x2 max-pool: 28 ->
14 -> 7 -> 3), a 128-wide feature layer (a linear map of the 32 x 3 x 3 = 288 values, then a
ReLU) and 10 logits. About 52,000 parameters (a 0.2 MB file). Input: uint8 digits (N, 1, 28, 28)
in 0..255, scaled here to [0, 1] and standardised with MNIST's mean and standard deviation.

The weights ship in ``data/digit-classifier.pt``, a plain ``state_dict`` saved with
:func:`torch.save` and loaded with ``weights_only=True``; they are made by
``funnelkit digits train --out data/digit-classifier.pt`` (:mod:`funnelkit.digits.training`).
"""

from pathlib import Path

import torch
from torch import nn

from ..paths import DATA_DIR, shown

CLASSIFIER_FILE = "digit-classifier.pt"
CLASSIFIER_PATH = DATA_DIR / CLASSIFIER_FILE
TRAIN_COMMAND = f"funnelkit digits train --out data/{CLASSIFIER_FILE}"
FEATURE_DIM = 128
CLASSES = 10
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of MNIST's 60,000 training pixels in [0, 1]


class ClassifierFileError(ValueError):
    """The digit classifier's file is there but is not a state_dict of :class:`DigitClassifier`."""


class ClassifierMissing(FileNotFoundError):
    """The digit classifier's file is not there."""


def check_digits(images, name="images"):
    """Check uint8 digits of shape (N >= 1, 1, 28, 28) and return them (a ValueError otherwise)."""
    if not torch.is_tensor(images):
        raise ValueError(f"{name} must be a torch uint8 tensor of shape (N, 1, 28, 28) in 0..255, got "
                         f"{type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 digits (N, 1, 28, 28) in 0..255, got dtype {images.dtype}; "
                         "convert b-bit model samples with funnelkit.data.to_uint8_images(u, bits)")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28) or images.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    return images


class DigitClassifier(nn.Module):
    """A small convolutional MNIST classifier; :meth:`features` are its 128-wide feature layer.

    ``forward(x)`` returns the 10 logits, a linear map of ``features(x)``.
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 14 x 14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 7 x 7
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 3 x 3
            nn.Flatten(),
            nn.Linear(32 * 3 * 3, FEATURE_DIM), nn.ReLU(),
        )
        self.logits = nn.Linear(FEATURE_DIM, CLASSES)

    @staticmethod
    def scale(images):
        """uint8 digits (N, 1, 28, 28) -> standardised float32 inputs."""
        return (check_digits(images).to(torch.float32) / 255.0 - MNIST_MEAN) / MNIST_STD

    def features(self, images):
        """The 128-wide features (after the ReLU) of uint8 digits, shape (N, 128)."""
        return self.body(self.scale(images).to(self.logits.weight.device))

    def forward(self, images):
        """The 10 class logits of uint8 digits, shape (N, 10)."""
        return self.logits(self.features(images))


def load_classifier(path=None):
    """The shipped :class:`DigitClassifier` (or the one at ``path``), in eval mode, on the CPU.

    A missing file raises :class:`ClassifierMissing` (a FileNotFoundError) and one that does not
    hold the classifier's state_dict :class:`ClassifierFileError` (a ValueError); both name the
    file and the command that makes it.
    """
    path = Path(path).expanduser() if path is not None else CLASSIFIER_PATH
    remedy = f"make it with `{TRAIN_COMMAND}` (a few minutes on one CPU thread)"
    if not path.is_file():
        raise ClassifierMissing(f"the kit's digit classifier file {shown(path)} is missing; {remedy}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one line
        raise ClassifierFileError(f"the digit classifier file {shown(path)} cannot be read "
                                  f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                                  f"{remedy}") from None
    model = DigitClassifier()
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ClassifierFileError(f"the digit classifier file {shown(path)} does not hold a state_dict of "
                                  f"tensors (got {type(state).__name__}); {remedy}")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ClassifierFileError(f"the digit classifier file {shown(path)} does not fit DigitClassifier "
                                  f"({str(error).splitlines()[0]} ...); {remedy}") from None
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise ClassifierFileError(f"the digit classifier file {shown(path)} holds NaN or infinite weights; {remedy}")
    return model.eval().requires_grad_(False)
