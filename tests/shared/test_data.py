"""genjax.data: built-in sets, file loaders and deterministic batching."""

from __future__ import annotations

import gzip
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import data


@pytest.mark.parametrize("name", data.TOY_2D)
def test_toys_shapes_determinism_and_splits(name):
    train = data.load(name)
    test = data.load(name, split="test")
    assert train.shape == (20_000, 2) and train.dtype == np.float32
    assert test.shape == (5_000, 2) and test.dtype == np.float32
    assert np.all(np.isfinite(train))
    np.testing.assert_array_equal(train, data.load(name, split="train", seed=0))
    assert not np.array_equal(train[:5_000], test)
    assert not np.array_equal(train, data.load(name, seed=1))
    # All sets are scaled to roughly [-4, 4] (ring: radius 4 plus Gaussian tails).
    assert np.quantile(np.abs(train), 0.999) < 5.5
    assert np.quantile(np.abs(train), 0.999) > 3.0


def test_ring_is_the_targets_ring_law():
    x = data.load("ring").astype(np.float64)
    # E|x| for x ~ N(mu, 0.09 I), |mu| = 4 is ~4 + 0.09 / 8 = 4.011; s.e. 0.3 / sqrt(2e4).
    assert abs(np.linalg.norm(x, axis=1).mean() - 4.011) < 0.01
    angles = 2 * np.pi * np.arange(8) / 8
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # (8, 2)
    dist = np.linalg.norm(x[:, None, :] - means[None], axis=-1)  # (n, 8)
    nearest = dist.argmin(axis=1)
    counts = np.bincount(nearest, minlength=8)
    # Uniform mode choice: each count ~ Binomial(2e4, 1/8), sd ~ 47; allow 5 sd.
    assert np.all(np.abs(counts - 2_500) < 5 * np.sqrt(20_000 / 8 * 7 / 8))
    # Within a mode the spread is isotropic with std 0.3 (s.e. ~0.0015 per coordinate).
    resid = x - means[nearest]
    np.testing.assert_allclose(resid.std(axis=0), [0.3, 0.3], atol=0.01)
    np.testing.assert_allclose(resid.mean(axis=0), [0.0, 0.0], atol=0.01)


def test_checkerboard_occupies_alternate_squares():
    x = data.load("checkerboard")
    assert np.all(np.abs(x) <= 4.0)
    cells = np.floor(x / 2.0).astype(int)  # 4x4 board of 2x2 squares
    assert np.all((cells[:, 0] + cells[:, 1]) % 2 == 0)
    assert len({tuple(c) for c in cells}) == 8


def test_moons_two_arcs():
    x = data.load("moons")
    # Each arc is a half circle of radius 2.5 around its centre (before noise).
    upper_c = 2.5 * (np.array([0.0, 0.0]) - [0.5, 0.25])
    lower_c = 2.5 * (np.array([1.0, 0.5]) - [0.5, 0.25])
    r_up = np.linalg.norm(x - upper_c, axis=1)
    r_lo = np.linalg.norm(x - lower_c, axis=1)
    r = np.where(np.abs(r_up - 2.5) < np.abs(r_lo - 2.5), r_up, r_lo)
    assert np.quantile(np.abs(r - 2.5), 0.99) < 0.5


def test_digits_shapes_labels_and_stratified_split():
    from sklearn.datasets import load_digits

    ref = load_digits()
    train, test = data.load("digits"), data.load("digits", split="test")
    y_train, y_test = data.load_labels("digits"), data.load_labels("digits", split="test")
    assert train.shape == (1438, 8, 8, 1) and test.shape == (359, 8, 8, 1)
    assert train.dtype == np.float32 and y_train.dtype == np.int32
    assert train.min() == 0.0 and train.max() == 1.0
    assert len(y_train) == len(train) and len(y_test) == len(test)
    # Train and test together are sklearn's data set, each image with its own label:
    # compare the multisets of (pixels, label) rows.
    ours = np.concatenate(
        [
            np.concatenate([train, test]).reshape(-1, 64) * 16.0,
            np.concatenate([y_train, y_test])[:, None],
        ],
        axis=1,
    )
    theirs = np.concatenate([ref.data, ref.target[:, None]], axis=1)
    sort = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_array_equal(sort(ours), sort(theirs))
    # Stratified: 80% of every class (rounded) in train.
    full = np.bincount(ref.target, minlength=10)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.round(0.8 * full))
    # Deterministic in seed; another seed shuffles differently.
    np.testing.assert_array_equal(y_train, data.load_labels("digits", seed=0))
    assert not np.array_equal(y_train, data.load_labels("digits", seed=3))
    np.testing.assert_array_equal(data.load("digits", seed=3), data.load("digits", seed=3))


def _expected_corpus() -> str:
    from pydoc_data.topics import topics

    vocab = set(data.text_vocabulary())
    fold = {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\t": " ",
    }
    text = "\n".join(topics[k] for k in sorted(topics))
    return "".join(c if c in vocab else "\ufffd" for c in (fold.get(c, c) for c in text))


def test_text_decodes_to_the_pydoc_corpus():
    vocab = data.text_vocabulary()
    assert len(vocab) == 97 and len(set(vocab)) == 97
    assert vocab[0] == "\n" and vocab[1] == " " and vocab[-1] == "\ufffd"
    train, test = data.load("text"), data.load("text", split="test")
    assert train.dtype == np.int32 and train.ndim == 1
    assert train.min() >= 0 and max(train.max(), test.max()) < len(vocab)
    want = _expected_corpus()
    assert len(want) > 400_000
    assert len(train) == int(0.9 * len(want))
    assert data.decode_text(np.concatenate([train, test])) == want
    assert 'The "assert" statement' in data.decode_text(train[:200])
    # Nearly all characters are in the vocabulary.
    assert np.mean(train == 96) < 1e-3


def test_npy_round_trip(tmp_path):
    arr = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float64)
    np.save(tmp_path / "x.npy", arr)
    got = data.load(str(tmp_path / "x.npy"))
    np.testing.assert_array_equal(got, arr)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(data.load(tmp_path / "x.npy", split="test"), arr)


def _write_idx(path, arr: np.ndarray, code: int, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(5,), dtype=np.uint8)
    suffix = ".gz" if compress else ""
    img_path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    lbl_path = tmp_path / f"train-labels-idx1-ubyte{suffix}"
    _write_idx(img_path, images, 0x08, compress)
    _write_idx(lbl_path, labels, 0x08, compress)
    np.testing.assert_array_equal(data.load_idx(img_path), images)
    got = data.load(str(img_path))
    assert got.shape == (5, 28, 28, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got[..., 0], images / 255.0, rtol=1e-6)
    got_labels = data.load(str(lbl_path))
    assert got_labels.dtype == np.int32
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_other_types_and_corrupt_files(tmp_path):
    arr = np.random.default_rng(2).normal(size=(3, 4))
    _write_idx(tmp_path / "f64.idx", arr, 0x0E)
    np.testing.assert_array_equal(data.load(str(tmp_path / "f64.idx")), arr)
    ints = np.arange(-6, 6, dtype=np.int32).reshape(2, 6)
    _write_idx(tmp_path / "i32.idx", ints, 0x0C)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "i32.idx"), ints)
    truncated = tmp_path / "bad.idx"
    with open(tmp_path / "i32.idx", "rb") as fh:
        truncated.write_bytes(fh.read()[:-4])
    with pytest.raises(ValueError, match="IDX"):
        data.load_idx(truncated)
    with pytest.raises(ValueError, match="not an IDX"):
        data.load_idx(_garbage(tmp_path))
    with pytest.raises(ValueError, match="could not be read"):
        data.load_idx(tmp_path / "missing.idx")


def _garbage(tmp_path):
    p = tmp_path / "garbage.bin"
    p.write_bytes(b"\x89PNG not idx")
    return p


def test_txt_round_trip(tmp_path):
    text = "Grüße, world!\nΔx = 1 — ok.\n"
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    ids, vocab = data.load_text(path)
    assert ids.dtype == np.int32 and len(ids) == len(text)
    assert vocab == sorted(set(text))
    assert "".join(vocab[i] for i in ids) == text
    np.testing.assert_array_equal(data.load(str(path)), ids)
    assert data.decode_text(ids, vocab) == text


def test_bad_names_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="name must be one of .*ring.*digits.*text"):
        data.load("mnist")
    with pytest.raises(ValueError, match="name"):
        data.load(str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="name"):
        data.load(str(_garbage(tmp_path)))
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="npy"):
        data.load(str(tmp_path / "broken.npy"))
    with pytest.raises(ValueError, match="split"):
        data.load("ring", split="valid")
    with pytest.raises(ValueError, match="seed"):
        data.load("ring", seed=-1)
    with pytest.raises(ValueError, match="digits"):
        data.load_labels("ring")


def test_batch_indices_permutation_per_epoch(key):
    n, bs = 23, 5  # 4 batches per epoch, 3 examples dropped each epoch
    epoch0 = np.concatenate([np.asarray(data.batch_indices(key, s, n, bs)) for s in range(4)])
    epoch1 = np.concatenate([np.asarray(data.batch_indices(key, s, n, bs)) for s in range(4, 8)])
    for ep in (epoch0, epoch1):
        assert ep.dtype == np.int32 and len(ep) == 20
        assert len(set(ep.tolist())) == 20 and ep.min() >= 0 and ep.max() < n
    assert not np.array_equal(epoch0, epoch1)  # a fresh permutation each epoch
    # Deterministic in (key, step), also with a traced step inside jit.
    np.testing.assert_array_equal(data.batch_indices(key, 6, n, bs), epoch1[10:15])
    traced = jax.jit(lambda s: data.batch_indices(key, s, n, bs))(jnp.int32(6))
    np.testing.assert_array_equal(traced, epoch1[10:15])
    other = np.asarray(data.batch_indices(jax.random.key(99), 0, n, bs))
    assert not np.array_equal(other, epoch0[:5])


def test_batch_indices_full_batch_and_bad_sizes(key):
    full = np.asarray(data.batch_indices(key, 3, 10, 10))
    np.testing.assert_array_equal(np.sort(full), np.arange(10))
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(key, 0, 10, 11)
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(key, 0, 10, 0)


def test_iterate_batches_over_a_pytree(key):
    x = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # (12, 3)
    batch_data = {"x": x, "y": np.arange(12)}
    batches = list(data.iterate_batches(batch_data, 4, key=key, num_steps=5))
    assert len(batches) == 5
    for s, b in enumerate(batches):
        assert b["x"].shape == (4, 3) and b["y"].shape == (4,)
        np.testing.assert_array_equal(b["x"][:, 0], b["y"])  # leaves stay aligned
        np.testing.assert_array_equal(b["y"], data.batch_indices(key, s, 12, 4))
    resumed = next(data.iterate_batches(batch_data, 4, key=key, start_step=3))
    np.testing.assert_array_equal(resumed["y"], batches[3]["y"])
    with pytest.raises(ValueError, match="leading axis"):
        next(data.iterate_batches({"a": x, "b": np.arange(5)}, 2, key=key))
