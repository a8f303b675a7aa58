"""Built-in data sets and deterministic batching.

Every data set here is present on every machine with genjax installed: nothing is
downloaded. ``load(name, *, split, seed)`` returns a NumPy array:

================ ============================ ===========================================
name             array                        source
================ ============================ ===========================================
``ring``         float32 (n, 2)               8 Gaussians on a circle of radius 4, std 0.3
                                              -- the law of ``genjax.targets.ring()``
``moons``        float32 (n, 2)               two interleaved half circles, in ~[-4, 4]
``swissroll``    float32 (n, 2)               2-D swiss roll (x, z projection), in ~[-4, 4]
``checkerboard`` float32 (n, 2)               uniform on the dark squares of a 4x4 board
                                              over [-4, 4]^2 (Grathwohl et al. 2019)
``digits``       float32 (n, 8, 8, 1) [0, 1]  scikit-learn's bundled 8x8 digits (1,797)
``text``         int32 (n,)                   CPython's ``pydoc_data.topics`` as
                                              character ids over ``text_vocabulary()``
================ ============================ ===========================================

Splits and sizes:

* 2-D toys: 20,000 points for ``split="train"`` and 5,000 for ``split="test"``,
  drawn from ``np.random.default_rng`` seeded by ``(seed, split, name)``: the same
  arguments give the same array, train and test are independent draws.
* ``digits``: a stratified 80/20 split (80% of each class,
  rounded, goes to train: 1,438 / 359), shuffled by ``seed``; ``load_labels`` gives the labels
  in the same order.
* ``text``: the first 90% of the characters is ``train``, the last 10% ``test``
  (contiguous, so no sentence is split between the two except at the boundary);
  ``seed`` is not used. The corpus is the documentation of the running Python,
  so its length differs slightly between Python versions (~465k characters on
  3.11, ~492k on 3.12).

A path instead of a name loads user data (``split`` and ``seed`` are then not
used: the whole file is returned; pass a separate file for test data):

* ``.npy``: the stored array, unchanged (one holding NaN or inf is refused);
* MNIST IDX files (``train-images-idx3-ubyte``, optionally ``.gz``), recognised
  by their magic number: unsigned-byte images ``(n, H, W)`` become float32
  ``(n, H, W, 1)`` in [0, 1] (the ``digits`` layout), unsigned-byte vectors
  ``(n,)`` (label files) become int32; anything else is returned in its stored
  dtype. ``load_idx`` gives the raw array;
* UTF-8 ``.txt``: int32 character ids over the file's own vocabulary (its
  distinct characters in code-point order); ``load_text`` returns
  ``(ids, vocabulary)``.

Batching: ``batch_indices(key, step, n, batch_size)`` is a pure, jit-able map from
a step number to the indices of that step's batch -- a fresh permutation of the
data each epoch -- so a training run that resumes at step ``s`` sees exactly the
batches it would have seen without the interruption.

References:
  Grathwohl et al., "FFJORD: Free-form Continuous Dynamics for Scalable
  Reversible Generative Models", ICLR 2019 (the 2-D toy sets).
  Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits" (UCI, 1998),
  as bundled by scikit-learn (``sklearn.datasets.load_digits``).
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks, run_files

DATASETS: tuple[str, ...] = ("ring", "moons", "swissroll", "checkerboard", "digits", "text")
"""Names accepted by ``load`` (besides file paths)."""

TOY_2D: tuple[str, ...] = ("ring", "moons", "swissroll", "checkerboard")
SPLITS: tuple[str, ...] = ("train", "test")
TOY_SIZES: dict[str, int] = {"train": 20_000, "test": 5_000}
"""Number of points of each split of a 2-D toy data set."""

# The ring's law, shared with ``genjax.targets.ring()`` (its defaults).
RING_MODES = 8
RING_RADIUS = 4.0
RING_STD = 0.3

DIGITS_TRAIN_FRACTION = 0.8
TEXT_TRAIN_FRACTION = 0.9

# Vocabulary of the built-in text corpus: newline, the 95 printable ASCII
# characters, then one id for every other character.
UNKNOWN_CHAR = "\ufffd"
_TEXT_VOCAB: tuple[str, ...] = ("\n", *(chr(c) for c in range(32, 127)), UNKNOWN_CHAR)
_TEXT_INDEX: dict[str, int] = {ch: i for i, ch in enumerate(_TEXT_VOCAB)}
# Typographic characters folded to their ASCII look-alikes before encoding
# (one character to one character, so ids stay aligned with the source text).
_TEXT_FOLD: dict[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\t": " ",
}

# IDX element types (LeCun et al., the MNIST file format): code -> big-endian dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


# --------------------------------------------------------------------------- helpers


def _split_id(split: str) -> int:
    return SPLITS.index(checks.one_of("split", split, SPLITS))


def _rng(name: str, split: str, seed: int) -> np.random.Generator:
    """A generator seeded by (seed, split, name): deterministic, distinct per split."""
    split_id = _split_id(split)
    seed = checks.nonnegative_int("seed", seed)
    return np.random.default_rng([seed, split_id, zlib.crc32(name.encode())])


def _unknown_name(value: Any) -> ValueError:
    return ValueError(
        f"name must be one of {DATASETS} or a path to an existing .npy, MNIST IDX or "
        f"UTF-8 .txt file, got {value!r}"
    )


# --------------------------------------------------------------------------- 2-D toys


def _ring(rng: np.random.Generator, n: int) -> np.ndarray:
    # k ~ Uniform{0..K-1}, x = R (cos 2 pi k/K, sin 2 pi k/K) + std * eps
    k = rng.integers(0, RING_MODES, size=n)
    angle = 2.0 * np.pi * k / RING_MODES
    means = RING_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (n, 2)
    return means + RING_STD * rng.standard_normal((n, 2))


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    # Two half circles (as sklearn.datasets.make_moons): upper (cos th, sin th),
    # lower (1 - cos th, 1/2 - sin th), th ~ U[0, pi], plus N(0, 0.05^2) noise,
    # then centred and scaled by 2.5 so the data spans ~[-4, 4].
    upper = rng.random(n) < 0.5
    theta = np.pi * rng.random(n)
    x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x, y], axis=-1) + 0.05 * rng.standard_normal((n, 2))
    return 2.5 * (pts - np.array([0.5, 0.25]))


def _swissroll(rng: np.random.Generator, n: int) -> np.ndarray:
    # sklearn.datasets.make_swiss_roll's (x, z) plane: t ~ U[1.5 pi, 4.5 pi],
    # (t cos t, t sin t) + N(0, 0.5^2), scaled by 1/3.5 so |coords| <~ 4.
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=-1)
    pts = pts + 0.5 * rng.standard_normal((n, 2))
    return pts / 3.5


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    # FFJORD's checkerboard: x1 ~ U[-2, 2]; x2 uniform on the unit cells whose
    # parity matches floor(x1), so the points fill alternate squares; scaled by 2.
    x1 = 4.0 * rng.random(n) - 2.0
    x2 = rng.random(n) - 2.0 * rng.integers(0, 2, size=n)
    x2 = x2 + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], axis=-1)


_TOYS = {"ring": _ring, "moons": _moons, "swissroll": _swissroll, "checkerboard": _checkerboard}


# --------------------------------------------------------------------------- digits


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are integers 0..16; scale to [0, 1] and add a channel axis (NHWC).
    images = (bunch.images.astype(np.float32) / 16.0)[..., None]  # (1797, 8, 8, 1)
    return images, bunch.target.astype(np.int32)


def _digits_indices(split: str, seed: int) -> np.ndarray:
    """Indices into sklearn's digits of one split: stratified 80/20, shuffled by seed."""
    split_id = _split_id(split)
    _, labels = _digits_raw()
    rng = np.random.default_rng([checks.nonnegative_int("seed", seed), zlib.crc32(b"digits")])
    parts: list[list[np.ndarray]] = [[], []]
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(DIGITS_TRAIN_FRACTION * idx.size))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:])
    chosen = np.concatenate(parts[split_id])
    return rng.permutation(chosen)


def load_labels(name: str, *, split: str = "train", seed: int = 0) -> np.ndarray:
    """Class labels of a labelled built-in data set, in the order of ``load``.

    Args:
      name: ``"digits"`` (the only labelled built-in set).
      split: ``"train"`` or ``"test"``.
      seed: the seed given to ``load``.

    Returns:
      int32 (n,) labels in 0..9, ``labels[i]`` belonging to ``load(name, ...)[i]``.
    """
    checks.one_of("name", name, ("digits",))  # the only labelled built-in set
    _, labels = _digits_raw()
    return labels[_digits_indices(split, seed)]


# --------------------------------------------------------------------------- text


def load_with_labels(
    name: str, split: str = "train", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(load(name), load_labels(name))`` in the same order: a labelled data set.

    The signature matches ``Recipe.load_data`` ``(name, split, seed)``, so a recipe that
    trains on ``(images, labels)`` pairs passes this function as its loader.

    Returns:
      ``(x, labels)``: ``x`` as :func:`load` gives it (digits: ``(n, 8, 8, 1)`` in [0, 1]),
      ``labels`` ``(n,)`` int32.
    """
    return load(name, split=split, seed=seed), load_labels(name, split=split, seed=seed)


def text_vocabulary() -> list[str]:
    """The built-in corpus' vocabulary: id -> character.

    97 entries: id 0 is ``"\\n"``, ids 1..95 are the printable ASCII characters
    ``" "`` .. ``"~"`` in code-point order, and id 96 is ``"\\ufffd"`` (the
    Unicode replacement character), which stands for every character outside
    the vocabulary. Before encoding, tabs become spaces and typographic quotes
    and dashes (``‘ ’ “ ” – —``) become ``' " -``; what remains unknown (a few
    symbols such as ``°``, ``ß``, ``…``) maps to id 96.
    """
    return list(_TEXT_VOCAB)


def encode_text(text: str) -> np.ndarray:
    """Characters -> int32 ids over ``text_vocabulary()`` (unknowns -> id 96)."""
    unknown = _TEXT_INDEX[UNKNOWN_CHAR]
    ids = [_TEXT_INDEX.get(_TEXT_FOLD.get(ch, ch), unknown) for ch in text]
    return np.asarray(ids, dtype=np.int32)


def decode_text(ids: Any, vocabulary: list[str] | None = None) -> str:
    """Ids -> string, over ``vocabulary`` (default ``text_vocabulary()``).

    Args:
      ids: (n,) integer ids.
      vocabulary: id -> character list; default the built-in one.
    """
    vocab = _TEXT_VOCAB if vocabulary is None else vocabulary
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


@functools.lru_cache(maxsize=1)
def corpus_text() -> str:
    """The raw built-in corpus: ``pydoc_data.topics`` texts joined in sorted key order."""
    from pydoc_data.topics import topics

    return "\n".join(topics[k] for k in sorted(topics))


@functools.lru_cache(maxsize=1)
def _corpus_ids() -> np.ndarray:
    return encode_text(corpus_text())


# --------------------------------------------------------------------------- files


def _open_maybe_gz(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), optionally gzip-compressed.

    Layout: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions ``d``,
    then ``d`` big-endian int32 sizes and the data, big-endian, row-major.

    Args:
      path: the file, e.g. ``train-images-idx3-ubyte`` or ``...-ubyte.gz``.

    Returns:
      the array in its stored type (native byte order), shape from the header.
    """
    path = os.fspath(path)
    try:
        with _open_maybe_gz(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"path {path!r} could not be read as an IDX file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path {path!r} is not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path {path!r}: IDX header truncated")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"path {path!r}: IDX header says shape {shape} ({count * dtype.itemsize} bytes) "
            f"but the file holds {len(raw) - header} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _is_idx(path: str) -> bool:
    try:
        with _open_maybe_gz(path) as fh:
            magic = fh.read(4)
    except (OSError, EOFError):
        return False
    return len(magic) == 4 and magic[0] == 0 and magic[1] == 0 and magic[2] in _IDX_DTYPES


def load_text(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read a UTF-8 text file as character ids over its own vocabulary.

    Args:
      path: a UTF-8 text file.

    Returns:
      ``(ids, vocabulary)``: int32 (n,) ids, one per character, and the file's
      distinct characters in code-point order (id -> character), so
      ``"".join(vocabulary[i] for i in ids)`` is the file's text.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"path {path!r} could not be read as UTF-8 text: {err}") from err
    vocabulary = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocabulary)}
    return np.asarray([index[ch] for ch in text], dtype=np.int32), vocabulary


def _load_path(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:  # EOFError: an empty or cut file
            raise ValueError(f"path {path!r} could not be read as a .npy file: {err}") from err
    if path.endswith(".txt"):
        return load_text(path)[0]
    if _is_idx(path):
        data = load_idx(path)
        if data.dtype == np.uint8 and data.ndim == 3:
            # Images (n, H, W) of bytes -> float32 (n, H, W, 1) in [0, 1], as digits.
            return (data.astype(np.float32) / 255.0)[..., None]
        if data.dtype == np.uint8 and data.ndim == 1:
            return data.astype(np.int32)  # labels
        return data
    raise _unknown_name(path)


# --------------------------------------------------------------------------- load


def load(name: str | os.PathLike, *, split: str = "train", seed: int = 0) -> np.ndarray:
    """Load a built-in data set by name, or user data from a file.

    Args:
      name: one of ``DATASETS`` or a path to a ``.npy``, MNIST IDX or UTF-8
        ``.txt`` file (see the module docstring for what each gives).
      split: ``"train"`` or ``"test"``.
      seed: integer >= 0; selects the draw of a 2-D toy set and the shuffle of
        ``digits``. Not used by ``text`` or file paths.

    Returns:
      float32 (n, 2) for the 2-D toys, float32 (n, 8, 8, 1) in [0, 1] for
      ``digits``, int32 (n,) character ids for ``text``.

    Example:
      >>> x = load("ring", split="test")
      >>> x.shape, x.dtype
      ((5000, 2), dtype('float32'))
    """
    _split_id(split)
    checks.nonnegative_int("seed", seed)
    if isinstance(name, str) and name in _TOYS:
        rng = _rng(name, split, seed)
        return _TOYS[name](rng, TOY_SIZES[split]).astype(np.float32)
    if name == "digits":
        images, _ = _digits_raw()
        return images[_digits_indices(split, seed)]
    if name == "text":
        ids = _corpus_ids()
        n_train = int(TEXT_TRAIN_FRACTION * ids.size)
        return (ids[:n_train] if split == "train" else ids[n_train:]).copy()
    if isinstance(name, (str, os.PathLike)) and os.path.isfile(name):
        try:
            array = _load_path(os.fspath(name))
        except ValueError as err:
            raise ValueError(
                f"name {os.fspath(name)!r} is a file that could not be loaded ({err}); name "
                f"must be one of {DATASETS} or a .npy, MNIST IDX or UTF-8 .txt file"
            ) from err
        return run_files.check_loaded(os.fspath(name), array)
    raise _unknown_name(name)


# --------------------------------------------------------------------------- batching


@functools.partial(jax.jit, static_argnames=("n", "batch_size"))
def batch_indices(key: jax.Array, step: jax.Array | int, n: int, batch_size: int) -> jax.Array:
    """Indices of the examples in batch number ``step``.

    With ``b = n // batch_size`` batches per epoch (the last ``n % batch_size``
    examples of each epoch's permutation are dropped):

        epoch = step // b,    perm = permutation(fold_in(key, epoch), n)
        batch = perm[(step mod b) * batch_size : (step mod b + 1) * batch_size]

    so every epoch visits each example at most once, epochs are shuffled
    independently, and the result depends only on ``(key, step)`` -- a resumed
    run replays the same batches.

    Args:
      key: PRNG key of the data order.
      step: scalar integer step (may be traced).
      n: number of examples (static), >= 1.
      batch_size: examples per batch (static), 1 <= batch_size <= n.

    Returns:
      int32 (batch_size,) indices into ``range(n)``, without repeats.
    """
    n = checks.positive_int("n", n)
    batch_size = checks.int_in_range("batch_size", batch_size, 1, n)
    batches_per_epoch = n // batch_size
    step = jnp.asarray(step, dtype=jnp.int32)
    epoch = step // batches_per_epoch
    position = (step % batches_per_epoch) * batch_size
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)  # (n,)
    return jax.lax.dynamic_slice(perm.astype(jnp.int32), (position,), (batch_size,))


def iterate_batches(
    data: Any,
    batch_size: int,
    *,
    key: jax.Array,
    start_step: int = 0,
    num_steps: int | None = None,
) -> Iterator[Any]:
    """Yield minibatches of a pytree of NumPy arrays, in ``batch_indices`` order.

    Args:
      data: array or pytree of arrays sharing the leading axis ``n``.
      batch_size: examples per batch, 1 <= batch_size <= n.
      key: PRNG key of the data order.
      start_step: first step to yield (to resume a run).
      num_steps: how many batches to yield; ``None`` for an endless stream.

    Yields:
      the pytree with every leaf indexed by that step's ``(batch_size,)`` indices.
    """
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("data must hold at least one array")
    n = int(np.shape(leaves[0])[0])
    for leaf in leaves:
        if np.shape(leaf)[0] != n:
            raise ValueError(
                f"data leaves must share the leading axis; got {np.shape(leaf)[0]} and {n}"
            )
    batch_size = checks.int_in_range("batch_size", batch_size, 1, n)
    step = int(start_step)
    while num_steps is None or step < start_step + num_steps:
        idx = np.asarray(batch_indices(key, step, n, batch_size))
        yield jax.tree_util.tree_map(lambda leaf, idx=idx: np.asarray(leaf)[idx], data)
        step += 1
