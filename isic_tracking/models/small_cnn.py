"""``smallcnn``: a four-block CNN that learns the synthetic demo data from scratch in minutes on
a CPU, where AlexNet/VGG/ResNet (the thesis's three, kept as options) need ImageNet weights or
many more epochs.

Each block is conv 3x3 -> BatchNorm -> ReLU -> 2x2 max-pool; global average pooling and a
dropout + linear head follow. BatchNorm is what makes it train in a few epochs at lr ~1e-3;
3x3 kernels keep the first layer's filters (colour/edge detectors) easy to visualize; global
pooling makes "how much of the image is lesion of this colour" (the planted size and colour
cues) one linear read-out away. Layer names follow AlexNet's ``features.<i>`` so the
interpretation stages address it the same way (``features.0`` is the first conv).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

#: Channels of the four blocks (about 0.39 M parameters).
WIDTHS: tuple[int, ...] = (32, 64, 128, 256)


class SmallCNN(nn.Module):
    """Conv blocks in ``features``, global average pooling, ``head`` = Dropout + Linear.

    Args:
        num_outputs: logits (1 for the binary task).
        widths: channels of each block; one 2x2 max-pool per block, so the input side must be
            at least ``2 ** len(widths)`` pixels.
        dropout: dropout probability before the linear head.
    """

    def __init__(
        self, num_outputs: int, widths: Sequence[int] = WIDTHS, dropout: float = 0.1
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in widths:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, num_outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


#: Architectures defined in this package: name -> constructor(num_outputs, dropout).
LOCAL_ARCHS = {"smallcnn": lambda num_outputs, dropout: SmallCNN(num_outputs, dropout=dropout)}
