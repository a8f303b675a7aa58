"""Shared test helpers: NumPy copies of nnx networks for the oracle."""

from __future__ import annotations

import numpy as np


def np_layers(mlp) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (kernel, bias) pairs of a genjax.nn.MLP as float64 arrays."""
    return [(np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64))
            for layer in mlp.layers]


def np_linear(layer) -> list[tuple[np.ndarray, np.ndarray]]:
    """An nnx.Linear as a one-layer list for oracle.mlp."""
    return [(np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64))]
