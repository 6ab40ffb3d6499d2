"""The ResNet18-style encoder and decoder of the image VAE baseline (paper Sec. 4 "Image Data", A.8).

A.8: "a ResNet18 encoder with a single linear layer to map from the output of the ResNet18 model
to the latent space. The same convolutions are repeated for the decoder with convolutional
kernels for the upsampling"; Sec. 4: "a learnable standard deviation for each channel at the
output of the decoder". The layout follows the reference note (4.3):

* encoder: a 3x3 stem with stride 2 -> four stages of basic residual blocks (widths
  b, 2b, 4b, 8b with b = 64; (2, 2, 2, 2) blocks; stride 2 at the start of stages 2-4) ->
  global average pooling -> one linear layer to [mean, log-variance] of q(z | x).
* decoder, the mirror image: one linear layer to 8b channels at 1 x 1 -> nearest upsampling to
  (H/16, W/16) -> stages 8b -> 4b -> 2b -> b -> b whose upsampling blocks use a "resize
  convolution" (nearest x2, then a 3x3 convolution) -> a resize convolution to C channels at
  (H, W) -> sigmoid, so the mean lies in [0, 1]; a learnable log standard deviation per channel.

The authors' decoder hard-codes the first upsampling for 32 x 32 images; here it is H/16 x W/16,
so 32 x 32 (CIFAR-10) and 64 x 64 (ImageNet64) both work (any H, W divisible by 16).
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_int


class _EncoderBlock(nn.Module):
    """A basic ResNet block: conv-BN-ReLU-conv-BN plus a (projected when strided) shortcut."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResizeConv2d(nn.Module):
    """Upsampling by nearest-neighbour interpolation, then a 3x3 convolution
    (A.8: "convolutional kernels for the upsampling")."""

    def __init__(self, in_channels, out_channels, scale_factor=2):
        super().__init__()
        self.scale_factor = scale_factor
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=self.scale_factor, mode="nearest"))


class _DecoderBlock(nn.Module):
    """The mirror of :class:`_EncoderBlock`; with ``upsample`` its second convolution and its
    shortcut are resize convolutions doubling H and W."""

    def __init__(self, in_channels, out_channels, upsample):
        super().__init__()
        self.conv2 = nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(in_channels)
        if upsample:
            self.conv1 = ResizeConv2d(in_channels, out_channels)
            self.shortcut = nn.Sequential(ResizeConv2d(in_channels, out_channels), nn.BatchNorm2d(out_channels))
        else:
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
            self.shortcut = nn.Identity()
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn1(self.conv1(out)) + self.shortcut(x))


def _check_blocks(blocks):
    """Return ``blocks`` as a tuple of four ints >= 1, the blocks of the four stages."""
    if not isinstance(blocks, (tuple, list)) or len(blocks) != 4:
        raise ValueError(f"blocks must give the blocks of the four stages, four ints >= 1, got {blocks!r}")
    return tuple(check_int(n, f"blocks[{stage}] (the blocks of stage {stage + 1})", low=1)
                 for stage, n in enumerate(blocks))


def _check_size(height, width):
    if height % 16 or width % 16:
        raise ValueError(f"the ResNet VAE needs H and W divisible by 16 (four halvings), got {height} x {width}")


class ResNetEncoder(nn.Module):
    """The VAE's ResNet18 encoder (A.8): x' (batch, C, H, W) -> (batch, 2 * latent_dim),
    [mean, log-variance] of q(z | x)."""

    def __init__(self, channels, latent_dim, base_channels=64, blocks=(2, 2, 2, 2)):
        super().__init__()
        blocks = _check_blocks(blocks)
        self.stem = nn.Sequential(nn.Conv2d(channels, base_channels, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(base_channels), nn.ReLU())
        layers, width = [], base_channels
        for stage, count in enumerate(blocks):
            out = base_channels * 2**stage
            for i in range(count):
                layers.append(_EncoderBlock(width, out, stride=2 if (stage > 0 and i == 0) else 1))
                width = out
        self.stages = nn.Sequential(*layers)
        self.linear = nn.Linear(width, 2 * latent_dim)

    def forward(self, x):
        features = self.stages(self.stem(x))
        return self.linear(F.adaptive_avg_pool2d(features, 1).flatten(1))


class ResNetDecoder(nn.Module):
    """The VAE's decoder (A.8, Eq. 17): z (batch, latent_dim) -> (mean in [0, 1] of shape (batch, C, H, W),
    log_std of shape (1, C, 1, 1))."""

    def __init__(self, latent_dim, data_shape, base_channels=64, blocks=(2, 2, 2, 2)):
        super().__init__()
        blocks = _check_blocks(blocks)
        channels, height, width = self.data_shape = tuple(data_shape)
        _check_size(height, width)
        self.start = (height // 16, width // 16)
        width_in = base_channels * 8
        self.linear = nn.Linear(latent_dim, width_in)
        layers = []
        for stage in (3, 2, 1, 0):  # mirror of the encoder's stages; the upsampling block comes last
            out = base_channels * 2 ** max(stage - 1, 0)
            for i in range(blocks[stage]):
                last = i == blocks[stage] - 1
                layers.append(_DecoderBlock(width_in, out if last else width_in, upsample=last and stage > 0))
            width_in = out
        self.stages = nn.Sequential(*layers)
        self.head = ResizeConv2d(base_channels, channels)  # mirrors the stride-2 stem
        self.log_std = nn.Parameter(torch.zeros(channels))

    def forward(self, z):
        x = self.linear(z)[:, :, None, None]
        x = F.interpolate(x, size=self.start, mode="nearest")
        mean = torch.sigmoid(self.head(self.stages(x)))
        return mean, self.log_std.reshape(1, -1, 1, 1)


__all__ = ["ResNetDecoder", "ResNetEncoder", "ResizeConv2d"]
