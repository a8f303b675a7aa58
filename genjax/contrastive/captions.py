"""Built-in image-text data: the 8x8 digits paired with generated captions.

Every digit image gets captions written from templates such as "a handwritten seven",
"the digit 7" or "a photo of the number seven" -- the number as a word or as a numeral --
so that a text encoder has to learn that "seven" and "7" name the same picture. Captions
are tokenised at the character level with a small vocabulary of our own:

    id 0        <pad>   fills a caption up to ``MAX_LENGTH``
    id 1        <bos>   starts every caption
    id 2        <eos>   ends every caption (the text encoder pools here, as CLIP does)
    ids 3...    " abcdefghijklmnopqrstuvwxyz0123456789"

So a caption of c characters is ``[<bos>, c ids, <eos>, <pad>...]`` and the empty
caption ``[<bos>, <eos>, <pad>...]`` is what caption dropout substitutes (the null
condition of classifier-free guidance).

The ``TEMPLATES`` are used for training and for zero-shot prompts; ``UNSEEN_TEMPLATES``
are never trained on (held out to see whether the text encoder generalises).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "CHARACTERS",
    "VOCABULARY",
    "VOCAB_SIZE",
    "MAX_LENGTH",
    "NUMBER_WORDS",
    "TEMPLATES",
    "UNSEEN_TEMPLATES",
    "caption",
    "tokenize",
    "decode",
    "empty_caption",
    "eos_position",
    "caption_table",
    "sample_captions",
]

PAD, BOS, EOS = 0, 1, 2
"""Token ids of padding, beginning and end of a caption (``PAD, BOS, EOS = 0, 1, 2``)."""
CHARACTERS = " abcdefghijklmnopqrstuvwxyz0123456789"
"""The characters of captions: space, a-z, 0-9 (token ids 3 onwards)."""
VOCABULARY: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", *CHARACTERS)  # id -> symbol
VOCAB_SIZE = len(VOCABULARY)  # 40
_ID = {ch: i for i, ch in enumerate(VOCABULARY) if len(ch) == 1}
MAX_LENGTH = 32  # <bos> + up to 30 characters + <eos>

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The digits as words, ``NUMBER_WORDS[d]`` for digit ``d``."""

# "{word}" is the number as a word ("seven"), "{digit}" as a numeral ("7").
TEMPLATES: tuple[str, ...] = (
    "a handwritten {word}",
    "the digit {digit}",
    "a photo of the number {word}",
    "the number {word}",
    "a drawing of a {word}",
    "digit {digit}",
    "an image of a handwritten {digit}",
    "a {word}",
    "the numeral {digit}",
    "{word}",
)
UNSEEN_TEMPLATES: tuple[str, ...] = (
    "a picture of a {word}",
    "a scan of the digit {word}",
    "number {digit}",
)
"""Caption templates never used in training: zero-shot prompts the text encoder has not seen."""


def caption(digit: int, template: str) -> str:
    """The caption of ``digit`` (0-9) in ``template`` ("a handwritten {word}" -> ...)."""
    digit = checks.int_in_range("digit", digit, 0, 9)
    return template.format(word=NUMBER_WORDS[int(digit)], digit=int(digit))


def tokenize(text: str | Sequence[str], *, length: int = MAX_LENGTH) -> np.ndarray:
    """Character ids of a caption (or a list of captions), padded to ``length``.

    The text is lower-cased and stripped; characters outside ``CHARACTERS`` are an error.

    Args:
      text: a caption, or a sequence of captions.
      length: total tokens per caption, ``<bos>`` and ``<eos>`` included.

    Returns:
      int32 ``(length,)`` for one caption, ``(n, length)`` for n captions.

    Raises:
      ValueError: an empty caption, a caption too long for ``length``, or an unknown
        character.

    Example:
      >>> tokenize("a two")[:7]  # [<bos>, a, ' ', t, w, o, <eos>]
      array([ 1,  4,  3, 23, 26, 18,  2], dtype=int32)
    """
    length = checks.int_in_range("length", length, 3, 2**31 - 1)  # <bos>, a character, <eos>
    if not isinstance(text, str):
        texts = list(text)
        if not texts:
            raise ValueError("text: expected a caption or a non-empty list of captions")
        return np.stack([tokenize(t, length=length) for t in texts])
    clean = text.strip().lower()
    if not clean:
        raise ValueError(f"text: the caption (prompt) must be non-empty, got {text!r}")
    if len(clean) + 2 > length:
        raise ValueError(
            f"text: caption {text!r} has {len(clean)} characters; at most {length - 2} fit"
        )
    unknown = sorted({ch for ch in clean if ch not in _ID})
    if unknown:
        raise ValueError(
            f"text: caption {text!r} has characters {unknown} outside the vocabulary "
            f"{CHARACTERS!r}"
        )
    ids = np.full((length,), PAD, np.int32)
    ids[0] = BOS
    ids[1 : 1 + len(clean)] = [_ID[ch] for ch in clean]
    ids[1 + len(clean)] = EOS
    return ids


def empty_caption(length: int = MAX_LENGTH) -> np.ndarray:
    """The empty caption ``[<bos>, <eos>, <pad>, ...]`` ``(length,)``: the null condition."""
    length = checks.int_in_range("length", length, 2, 2**31 - 1)
    ids = np.full((length,), PAD, np.int32)
    ids[0], ids[1] = BOS, EOS
    return ids


def decode(ids: Sequence[int] | np.ndarray) -> str:
    """The text of one token sequence ``(length,)`` (special tokens dropped)."""
    checks.token_ids("ids", np.asarray(ids), VOCAB_SIZE)
    return "".join(VOCABULARY[int(i)] for i in np.asarray(ids) if int(i) > EOS)


def eos_position(tokens: jax.Array) -> jax.Array:
    """Index of ``<eos>`` in each caption: ``(..., length) -> (...)`` int32.

    Every caption must hold an ``<eos>`` (checked when concrete; ``argmax`` would give 0).
    """
    _check_has_eos("tokens", tokens, EOS)
    return jnp.argmax(tokens == EOS, axis=-1).astype(jnp.int32)


def _check_has_eos(name: str, tokens, eos_id: int) -> None:
    """Every row (last axis) of concrete ``tokens`` holds ``eos_id``."""
    if checks.is_concrete(tokens):
        has = np.any(np.asarray(tokens) == eos_id, axis=-1)
        if not np.all(has):
            first = tuple(int(i) for i in np.argwhere(~np.atleast_1d(has))[0])
            raise ValueError(f"{name}: every caption must hold <eos> (id {eos_id}); the one "
                             f"at index {first} has none")


def check_model_tokens(name: str, tokens, model) -> None:
    """Caption tokens for a contrastive ``model``: integer ids in its text encoder's
    ``[0, vocab_size)`` with an ``<eos>`` per caption (values checked when concrete).

    Compiled entry points call this before their program, while the ids are concrete: the
    embedding table would return NaN rows for ids >= V and wrap negative ids around.
    """
    encoder = getattr(model, "text_encoder", None)
    vocab_size = getattr(encoder, "vocab_size", VOCAB_SIZE)
    eos_id = getattr(encoder, "eos_id", EOS)
    checks.token_ids(name, jnp.asarray(tokens), int(vocab_size))
    _check_has_eos(name, tokens, int(eos_id))


def caption_table(
    templates: Sequence[str] = TEMPLATES, *, length: int = MAX_LENGTH
) -> np.ndarray:
    """Every digit's caption in every template: int32 ``(10, T, length)``."""
    templates = tuple(templates)
    if not templates:
        raise ValueError("templates must be non-empty")
    return np.stack(
        [tokenize([caption(d, t) for t in templates], length=length) for d in range(10)]
    )


def sample_captions(key: jax.Array, labels: jax.Array, table: jax.Array) -> jax.Array:
    """One caption per image: a uniformly random template for each label.

    Args:
      key: PRNG key.
      labels: (batch,) int digits in [0, 9].
      table: (10, T, length) int32 tokens from :func:`caption_table`.

    Returns:
      (batch, length) int32 tokens.
    """
    labels = jnp.asarray(labels)
    table = jnp.asarray(table)
    checks.ndim("labels", labels, 1, "(batch,)")
    checks.ndim("table", table, 3, "(classes, templates, length)")
    checks.token_ids("labels", labels, table.shape[0])  # a digit in [0, classes)
    which = jax.random.randint(key, labels.shape, 0, table.shape[1])  # (batch,) template ids
    return table[labels, which]  # (batch, length)
