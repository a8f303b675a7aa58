"""LoRA: low-rank adaptation of the ``nnx.Linear`` and ``nnx.Conv`` layers of any model.

Hu et al. (2021), "LoRA: Low-Rank Adaptation of Large Language Models", section 4.1. A
pretrained weight ``W0`` (``d_in x d_out``) is frozen and the update is constrained to rank
``r``:

    h = x W0 + b + (alpha / r) (x A) B         A: (d_in, r),  B: (r, d_out)      (eq. 3)

``A`` starts random Gaussian and ``B`` at zero, so ``Delta W = (alpha / r) A B = 0`` at
initialisation and the adapted model *is* the pretrained one; only ``A`` and ``B`` are
trained. The layout is flax's (``y = x W``, kernel ``(in, out)``), so ``A`` and ``B`` here are
the transposes of the paper's ``A`` (``r x k``) and ``B`` (``d x r``).

A convolution kernel ``W0`` of shape ``(*window, c_in, c_out)`` is read as the matrix
``(prod(window) * c_in, c_out)`` that it is to the im2col view of the input, and adapted the
same way (the "LoCon" form of LoRA for convolutions): ``A`` is a convolution kernel
``(*window, c_in, r)`` with the base layer's strides, padding and dilations, ``B`` a 1x1
convolution ``(r, c_out)``:

    y = conv(x, W0) + b + (alpha / r) conv(x, A) B,   Delta W = (alpha / r) A B  (rank <= r)

By linearity of the convolution in its kernel this equals ``conv(x, W0 + Delta W) + b``,
which is what :func:`merge_lora` computes once, so that inference costs nothing extra
("no additional inference latency", section 4.1); :func:`unmerge_lora` subtracts it again.

Training only the adapters: :func:`lora_optimizer` wraps any optax optimiser in
``optax.multi_transform`` with the labels of :func:`lora_labels`, so the frozen parameters
get ``optax.set_to_zero()`` -- no optimiser state at all (no Adam moments) and a zero update.

The adapted model stays a *model* (DESIGN.md): an ``nnx.Module`` pytree, called like the
original, passed whole to ``jax.jit``, ``jax.grad``, optax and every genjax sampler and loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from genjax import checks

__all__ = [
    "LoRAParam",
    "LoRALinear",
    "LoRAConv",
    "apply_lora",
    "merge_lora",
    "unmerge_lora",
    "lora_labels",
    "lora_optimizer",
    "lora_parameter_counts",
]

PyTree = Any
LORA_LABEL = "lora"
FROZEN_LABEL = "frozen"


class LoRAParam(nnx.Param):
    """A LoRA adapter matrix (``A`` or ``B``): the only parameters :func:`lora_optimizer` trains."""


def _check_rank_alpha(rank: int, alpha: float | None, fan_in: int, fan_out: int) -> tuple:
    rank = checks.positive_int("rank", rank)
    if rank > min(fan_in, fan_out):
        # A rank above min(d_in, d_out) adds parameters without adding expressiveness.
        raise ValueError(
            f"rank must be in [1, min(d_in, d_out)] = [1, {min(fan_in, fan_out)}] for this "
            f"layer, got {rank}"
        )
    alpha = float(rank) if alpha is None else float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    return rank, alpha


class _LoRALayer(nnx.Module):
    """What the linear and convolutional adapters share: ``Delta W``, the scale, the state."""

    base: Any
    lora_a: LoRAParam
    lora_b: LoRAParam

    def _init_adapters(
        self,
        window_in: tuple[int, ...],
        fan_out: int,
        rank: int,
        alpha: float | None,
        rngs: nnx.Rngs,
    ) -> None:
        fan_in = math.prod(window_in)
        # The base layer's sizes, read by models that inspect their layers (MLP does).
        self.in_features, self.out_features = self.base.in_features, self.base.out_features
        self.rank, self.alpha = _check_rank_alpha(rank, alpha, fan_in, fan_out)
        self.scale = self.alpha / self.rank  # alpha / r (Hu et al., section 4.1)
        self.merged = False  # True after merge_lora: the base kernel holds W0 + Delta W
        dtype = self.base.kernel[...].dtype
        # A ~ N(0, 1 / fan_in) ("random Gaussian", section 4.1; the 1/fan_in variance keeps
        # x A at the scale of x); B = 0 so that Delta W = 0 at initialisation.
        a = jax.random.normal(rngs.params(), (*window_in, self.rank), dtype)
        self.lora_a = LoRAParam(a / math.sqrt(fan_in))  # (*window, d_in, r)
        self.lora_b = LoRAParam(jnp.zeros((self.rank, fan_out), dtype))  # (r, d_out)

    def delta_kernel(self) -> jax.Array:
        """``Delta W = (alpha / r) A B`` in the base kernel's shape (rank <= r as a matrix)."""
        a, b = self.lora_a[...], self.lora_b[...]
        return self.scale * jnp.einsum("...r,ro->...o", a, b)  # (*window, d_in, d_out)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``base(x) + (alpha / r) (x A) B``; the base layer alone once merged.

        (``_check_x`` and ``_low_rank_path``, ``x A`` or ``conv(x, A)``, are the subclass's.)
        """
        self._check_x(x)
        y = self.base(x)  # x W0 + b   (W0 + Delta W once merged)
        if self.merged:
            return y
        xa = self._low_rank_path(x)  # (..., r): x A  (conv(x, A) for a convolution)
        return y + self.scale * jnp.einsum("...r,ro->...o", xa, self.lora_b[...]).astype(y.dtype)


class LoRALinear(_LoRALayer):
    """An ``nnx.Linear`` with a rank-``r`` adapter: ``y = x W0 + b + (alpha / r) (x A) B``.

    Args:
      base: the pretrained ``nnx.Linear`` (kernel ``(d_in, d_out)``); kept, not copied.
      rank: ``r``, in ``[1, min(d_in, d_out)]``.
      alpha: the scale numerator (``Delta W = (alpha / r) A B``), > 0; default ``rank``.
      rngs: ``nnx.Rngs`` for ``A``'s initialisation.

    Attributes:
      lora_a: ``A``, ``(d_in, r)``, ``N(0, 1 / d_in)`` at initialisation.
      lora_b: ``B``, ``(r, d_out)``, zero at initialisation.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> base = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
      >>> layer = LoRALinear(base, rank=1, alpha=2.0, rngs=nnx.Rngs(1))
      >>> x = jnp.ones((4, 3))
      >>> bool(jnp.all(layer(x) == base(x)))  # B = 0: the adapted layer is the base layer
      True
    """

    def __init__(
        self, base: nnx.Linear, *, rank: int, alpha: float | None = None, rngs: nnx.Rngs
    ) -> None:
        checks.instance("base", base, nnx.Linear, "an nnx.Linear")
        self.base = base
        self._init_adapters((base.in_features,), base.out_features, rank, alpha, rngs)

    def _check_x(self, x: jax.Array) -> None:
        if x.shape[-1:] != (self.base.in_features,):
            raise ValueError(
                f"x must have {self.base.in_features} features on its last axis, got shape "
                f"{x.shape}"
            )

    def _low_rank_path(self, x: jax.Array) -> jax.Array:
        return x @ self.lora_a[...].astype(x.dtype)  # (..., d_in) @ (d_in, r) -> (..., r)


def _lax_padding(padding: Any, num_spatial: int) -> Any:
    """``nnx.Conv``'s padding as ``lax.conv_general_dilated`` takes it."""
    if isinstance(padding, str):
        if padding.upper() in ("SAME", "VALID", "SAME_LOWER"):
            return padding.upper()
        raise ValueError(
            f"padding must be 'SAME', 'VALID', an int or (low, high) pairs for a LoRA "
            f"convolution, got {padding!r}"
        )
    if isinstance(padding, int):
        return ((padding, padding),) * num_spatial
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
    return pairs * num_spatial if len(pairs) == 1 else pairs


def _per_axis(value: int | Sequence[int] | None, num_spatial: int) -> tuple[int, ...]:
    value = 1 if value is None else value
    return (value,) * num_spatial if isinstance(value, int) else tuple(value)


class LoRAConv(_LoRALayer):
    """An ``nnx.Conv`` with a rank-``r`` adapter: ``conv(x, W0) + b + (alpha/r) conv(x, A) B``.

    ``A`` is a convolution kernel ``(*window, c_in, r)`` applied with the base layer's
    strides, padding and dilations; ``B`` ``(r, c_out)`` mixes its ``r`` channels at each
    output position. ``Delta W = (alpha / r) A B`` has the base kernel's shape and rank
    ``<= r`` as a ``(prod(window) * c_in, c_out)`` matrix.

    Args:
      base: the pretrained ``nnx.Conv`` (channels last, any number of spatial axes), with
        ``feature_group_count = 1``, no ``mask`` and padding ``'SAME'``, ``'VALID'``, an int
        or ``(low, high)`` pairs.
      rank: ``r``, in ``[1, min(prod(window) * c_in, c_out)]``.
      alpha: the scale numerator, > 0; default ``rank``.
      rngs: ``nnx.Rngs`` for ``A``'s initialisation.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> base = nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0))
      >>> layer = LoRAConv(base, rank=2, rngs=nnx.Rngs(1))
      >>> layer(jnp.ones((1, 5, 5, 2))).shape
      (1, 5, 5, 3)
      >>> layer.delta_kernel().shape
      (3, 3, 2, 3)
    """

    def __init__(
        self, base: nnx.Conv, *, rank: int, alpha: float | None = None, rngs: nnx.Rngs
    ) -> None:
        checks.instance("base", base, nnx.Conv, "an nnx.Conv")
        if base.feature_group_count != 1:
            raise ValueError(
                f"base: feature_group_count must be 1 for a LoRA convolution, got "
                f"{base.feature_group_count}"
            )
        if base.mask is not None:
            raise ValueError("base: a masked nnx.Conv (mask is not None) cannot take LoRA")
        window = tuple(base.kernel_size)
        self.padding = _lax_padding(base.padding, len(window))  # checked here, used in call
        self.base = base
        self._init_adapters((*window, base.in_features), base.out_features, rank, alpha, rngs)

    def _check_x(self, x: jax.Array) -> None:
        n = len(self.base.kernel_size)
        if x.ndim < n + 1 or x.shape[-1] != self.base.in_features:
            raise ValueError(
                f"x must have shape (..., {n} spatial axes, {self.base.in_features}), got {x.shape}"
            )

    def _low_rank_path(self, x: jax.Array) -> jax.Array:
        n = len(self.base.kernel_size)
        batch_shape = x.shape[: x.ndim - n - 1]
        flat = x.reshape((-1, *x.shape[x.ndim - n - 1 :]))  # (B, *spatial, c_in)
        # channels last, as nnx.Conv: lhs (N, *spatial, C), rhs (*window, C_in, C_out)
        lhs = (0, n + 1, *range(1, n + 1))
        rhs = (n + 1, n, *range(n))
        numbers = jax.lax.ConvDimensionNumbers(lhs, rhs, lhs)
        xa = jax.lax.conv_general_dilated(
            flat,
            self.lora_a[...].astype(x.dtype),
            window_strides=_per_axis(self.base.strides, n),
            padding=self.padding,
            lhs_dilation=_per_axis(self.base.input_dilation, n),
            rhs_dilation=_per_axis(self.base.kernel_dilation, n),
            dimension_numbers=numbers,
        )  # (B, *out_spatial, r): conv(x, A)
        return xa.reshape((*batch_shape, *xa.shape[1:]))


def _is_lora(node: Any) -> bool:
    return isinstance(node, _LoRALayer)


def _child(node: Any, key: Any) -> Any:
    return node[key] if isinstance(key, int) or isinstance(node, nnx.Dict) else getattr(node, key)


def _set_child(node: Any, key: Any, value: Any) -> None:
    if isinstance(key, int) or isinstance(node, nnx.Dict):
        node[key] = value
    else:
        setattr(node, key, value)


def _path_name(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def apply_lora(
    key: jax.Array,
    model: nnx.Module,
    *,
    rank: int,
    alpha: float | None = None,
    where: Callable[[str, nnx.Module], bool] | None = None,
) -> nnx.Module:
    """A copy of ``model`` with every selected ``nnx.Linear`` / ``nnx.Conv`` adapted.

    Each selected layer becomes :class:`LoRALinear` / :class:`LoRAConv` around (a copy of)
    itself, with ``B = 0``: the returned model computes exactly what ``model`` computes
    until its adapters are trained. ``model`` itself is not modified.

    Args:
      key: initialises the ``A`` matrices (layer ``i`` uses ``fold_in(key, i)``).
      model: any ``nnx.Module`` (layers held in attributes, ``nnx.List`` or ``nnx.Dict``).
      rank: ``r`` of every adapter, in ``[1, min(fan_in, fan_out)]`` of each selected layer.
      alpha: the scale numerator (``Delta W = (alpha / r) A B``), > 0; default ``rank``.
      where: ``where(path, layer) -> bool`` selects layers by their dotted path in the
        model (``"up.3.res.conv1"``); default every Linear and Conv. Layers already adapted
        are left as they are.

    Returns:
      The adapted copy.

    Raises:
      ValueError: no layer selected, or a bad ``rank`` / ``alpha`` / layer.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from genjax.nn import MLP
      >>> net = MLP(2, [8], 2, rngs=nnx.Rngs(0))
      >>> adapted = apply_lora(jax.random.key(1), net, rank=1)
      >>> bool(jnp.all(adapted(jnp.ones((3, 2))) == net(jnp.ones((3, 2)))))
      True
      >>> lora_parameter_counts(adapted)
      (20, 62)
    """
    checks.instance("model", model, nnx.Module, "an nnx.Module")
    model = nnx.clone(model)
    if isinstance(model, (nnx.Linear, nnx.Conv)):  # the model is one layer: wrap it
        if where is not None and not where("", model):
            raise ValueError("where: selected no nnx.Linear or nnx.Conv layer of the model")
        wrap = LoRALinear if isinstance(model, nnx.Linear) else LoRAConv
        return wrap(model, rank=rank, alpha=alpha, rngs=nnx.Rngs(jax.random.fold_in(key, 0)))
    adapted = [path for path, node in nnx.iter_graph(model) if _is_lora(node)]
    chosen = []
    for path, node in nnx.iter_graph(model):
        if not isinstance(node, (nnx.Linear, nnx.Conv)) or not path:
            continue
        if any(path[: len(p)] == p for p in adapted):
            continue  # the base layer of an existing adapter
        if where is None or where(_path_name(path), node):
            chosen.append((path, node))
    if not chosen:
        raise ValueError("where: selected no nnx.Linear or nnx.Conv layer of the model")
    for i, (path, layer) in enumerate(sorted(chosen, key=lambda c: _path_name(c[0]))):
        rngs = nnx.Rngs(jax.random.fold_in(key, i))
        wrap = LoRALinear if isinstance(layer, nnx.Linear) else LoRAConv
        parent = model
        for k in path[:-1]:
            parent = _child(parent, k)
        _set_child(parent, path[-1], wrap(layer, rank=rank, alpha=alpha, rngs=rngs))
    return model


def _lora_layers(model: nnx.Module) -> list:
    layers = [node for _, node in nnx.iter_graph(model) if _is_lora(node)]
    if not layers:
        raise ValueError("model: holds no LoRA layer (build one with apply_lora)")
    return layers


def merge_lora(model: nnx.Module) -> nnx.Module:
    """A copy of ``model`` with every adapter folded in: base kernel ``W0 + (alpha/r) A B``.

    The merged layers compute ``x (W0 + Delta W) + b`` in one product (one convolution),
    the same function as the unmerged model up to float rounding, at the base model's cost.
    ``A`` and ``B`` are kept, so :func:`unmerge_lora` gives ``W0`` back. Adapters already
    merged are left as they are. Train the unmerged model: a merged layer's output does not
    depend on ``A`` and ``B``.

    Args:
      model: a model holding LoRA layers (:func:`apply_lora`).

    Returns:
      The merged copy.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> m = apply_lora(jax.random.key(0), nnx.Linear(3, 2, rngs=nnx.Rngs(0)), rank=1)
      >>> merge_lora(m).merged, unmerge_lora(merge_lora(m)).merged
      (True, False)
    """
    model = nnx.clone(model)
    for layer in _lora_layers(model):
        if not layer.merged:
            kernel = layer.base.kernel
            kernel.set_value(kernel[...] + layer.delta_kernel().astype(kernel[...].dtype))
            layer.merged = True
    return model


def unmerge_lora(model: nnx.Module) -> nnx.Module:
    """The inverse of :func:`merge_lora`: base kernel ``W - (alpha/r) A B``, adapters active.

    Args:
      model: a model holding LoRA layers, merged or not (unmerged ones are left as they are).

    Returns:
      The unmerged copy (equal to the model before merging up to float rounding).
    """
    model = nnx.clone(model)
    for layer in _lora_layers(model):
        if layer.merged:
            kernel = layer.base.kernel
            kernel.set_value(kernel[...] - layer.delta_kernel().astype(kernel[...].dtype))
            layer.merged = False
    return model


def lora_labels(params: PyTree) -> PyTree:
    """``params``' structure with ``"lora"`` at adapter leaves, ``"frozen"`` everywhere else.

    ``params`` may be a model or any pytree holding models (a recipe's dict); a leaf is an
    adapter leaf when it is the value of a :class:`LoRAParam`.
    """
    leaves, treedef = jax.tree.flatten(params)
    labels = []
    for node in jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable)):
        label = LORA_LABEL if isinstance(node, LoRAParam) else FROZEN_LABEL
        labels.extend([label] * len(jax.tree.leaves(node)))
    if len(labels) != len(leaves):  # a Variable holding several arrays would break alignment
        raise ValueError("params: could not align the LoRA labels with the leaves")
    return jax.tree.unflatten(treedef, labels)


def lora_optimizer(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inner`` on the adapters only; the frozen parameters get no state and a zero update.

    ``optax.multi_transform({"lora": inner, "frozen": optax.set_to_zero()}, lora_labels)``:
    the frozen leaves are masked out of ``inner`` (its state holds nothing for them, e.g. no
    Adam moments) and their update is exactly zero, so ``optax.apply_updates`` leaves them
    bit for bit.

    Args:
      inner: the optimiser of the adapters, e.g. ``optax.adam(1e-3)``.

    Returns:
      An optax transformation over the whole model (or a pytree holding it).

    Example:
      >>> import jax, optax
      >>> from flax import nnx
      >>> m = apply_lora(jax.random.key(0), nnx.Linear(3, 2, rngs=nnx.Rngs(0)), rank=1)
      >>> state = lora_optimizer(optax.adam(1e-2)).init(m)
      >>> sorted(x.shape for x in jax.tree.leaves(state) if x.ndim)  # A, B moments only
      [(1, 2), (1, 2), (3, 1), (3, 1)]
    """
    return optax.multi_transform(
        {LORA_LABEL: inner, FROZEN_LABEL: optax.set_to_zero()}, lora_labels
    )


def lora_parameter_counts(params: PyTree) -> tuple[int, int]:
    """``(trainable, total)``: scalars in the adapters and in the whole of ``params``."""
    labels = jax.tree.leaves(lora_labels(params))
    sizes = [math.prod(getattr(leaf, "shape", ())) for leaf in jax.tree.leaves(params)]
    trainable = sum(s for s, label in zip(sizes, labels, strict=True) if label == LORA_LABEL)
    return int(trainable), int(sum(sizes))
