"""Small networks with fixed weights and their cross-entropy gradients worked out in numpy, for the loss-saliency
tests (snip, grasp, fisher, plain)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from proxies import Batch, SimpleFactory

SHAPE = (1, 2, 2)  # flattened: 4 features
CLASSES = 3
W1 = [[0.5, -1.0, 0.2, 0.0], [0.1, 0.3, -0.4, 0.8], [-0.6, 0.2, 0.9, -0.3]]
B1 = [0.1, -0.2, 0.05]
W2 = [[1.0, -0.5, 0.3], [0.2, 0.7, -1.1], [-0.4, 0.6, 0.9]]
B2 = [0.0, 0.3, -0.1]


class OneLayer(nn.Module):
    """Linear(4 → 3) with the weights W1, B1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, CLASSES)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor(W1))
            self.fc.bias.copy_(torch.tensor(B1))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.flatten(1))


class TwoLayer(OneLayer):
    """Linear(4 → 3) → ReLU → Linear(3 → 3), weights W1, B1, W2, B2."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(CLASSES, CLASSES)
        with torch.no_grad():
            self.out.weight.copy_(torch.tensor(W2))
            self.out.bias.copy_(torch.tensor(B2))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.relu(self.fc(x.flatten(1))))


def factory(net: type[nn.Module]) -> SimpleFactory:
    return SimpleFactory(net, SHAPE, CLASSES)


def batch(n: int = 6, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(torch.randn((n, *SHAPE), generator=gen), torch.randint(0, CLASSES, (n,), generator=gen), CLASSES)


def as_numpy(b: Batch) -> tuple[np.ndarray, np.ndarray]:
    return b.images.flatten(1).double().numpy(), b.labels.numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _f32(values: list) -> np.ndarray:
    """The float32 weights the torch nets hold, in float64."""
    return np.array(values, dtype=np.float32).astype(np.float64)


def logit_residual(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """∂L/∂logits of the mean cross-entropy: (softmax − one-hot) / N."""
    return (_softmax(logits) - np.eye(logits.shape[1])[labels]) / len(labels)


def one_layer_grad(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W1, ∂L/∂W1) of :class:`OneLayer`: ∂L/∂W = residualᵀ x."""
    w = _f32(W1)
    return w, logit_residual(x @ w.T + _f32(B1), labels).T @ x


def two_layer_pass(x: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer of :class:`TwoLayer`: (weight, output a, ∂L/∂a), by the chain rule."""
    w1, w2 = _f32(W1), _f32(W2)
    a1 = x @ w1.T + _f32(B1)
    a2 = np.maximum(a1, 0) @ w2.T + _f32(B2)
    d2 = logit_residual(a2, labels)
    d1 = (d2 @ w2) * (a1 > 0)
    return [(w1, a1, d1), (w2, a2, d2)]
