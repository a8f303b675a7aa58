"""n-gram language models: counting, add-k and interpolated Kneser-Ney smoothing.

An n-gram model predicts token ``x_i`` from the ``n - 1`` tokens before it,
``P(x_i | x_{i-n+1} ... x_{i-1})``, with probabilities estimated from counts ``c(.)`` of
a training corpus. Two smoothers are implemented:

* **add-k** (Lidstone; Laplace for k = 1), Jurafsky & Martin eq. 3.26::

      P(w | u) = (c(u w) + k) / (c(u .) + k V)

* **interpolated Kneser-Ney**, Chen & Goodman (1999) eqs. (16)-(17)::

      P_KN(w | u) = max(a(u w) - D, 0) / a(u .) + D N1+(u .) / a(u .) * P_KN(w | u')

  where ``u'`` drops the first word of ``u``; ``a = c`` (raw counts) at the highest order
  and ``a(u w) = N1+(. u w)`` (the number of distinct words seen before ``u w``; the
  *continuation* count) at every lower order; ``N1+(u .)`` is the number of distinct ``w``
  with ``a(u w) > 0``; and the recursion ends in the uniform ``1 / V`` (order 0).

Definitions that make every next-token distribution sum to one (tested exhaustively; nltk's
Kneser-Ney does not, nltk issues #3065 and #3211):

* a context that never occurred at a level (``a(u .) = 0``) backs off wholly to the level
  below under Kneser-Ney, and is uniform under add-k (the ``k -> 0`` limit of its formula);
* with ``0 <= D <= 1`` every seen count is ``>= 1 >= D``, so the discounted mass
  ``sum_w max(a(u w) - D, 0) = a(u .) - D N1+(u .)`` is exactly what the interpolation
  weight returns to the lower order;
* an **out-of-vocabulary id** (``< 0`` or ``>= vocab_size``) in a context makes every
  context that contains it unseen (Kneser-Ney then backs off to the suffix after it);
  as a *target* it has probability 0 (``log_prob`` gives ``-inf``): the model's mass lies
  on the ``vocab_size`` ids. :func:`fit` refuses out-of-range training tokens.
* **the first tokens**: token ``i < n - 1`` of a sequence is predicted from the ``i``
  tokens before it by the model of order ``i + 1`` on the same counts (raw counts at its
  top level); no padding symbol is invented.

The counts themselves (every order as a sorted table of int32 ids, counted without a
``V**n`` table, and looked up by ``searchsorted``) are :mod:`genjax.counting.ngram_tables`;
this module is the language model that reads them: :func:`fit`, the smoothed
:func:`next_token_probs` and :func:`log_prob`, :func:`perplexity` and :func:`sample`.

References:
  Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
  Harvard TR-10-98 (1999). Kneser & Ney, "Improved backing-off for M-gram language
  modeling", ICASSP (1995). Jurafsky & Martin, "Speech and Language Processing", 3rd ed.
  draft, ch. 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks
from genjax.counting.ngram_tables import (
    DENSE_BUDGET,
    SENTINEL,
    NGramModel,
    context_lookups,
    continuation_counts,
    count_tables,
    counts,
    in_vocab,
)

__all__ = [
    "SMOOTHINGS",
    "DENSE_BUDGET",
    "NGramModel",
    "fit",
    "counts",
    "continuation_counts",
    "next_token_probs",
    "log_prob",
    "perplexity",
    "sample_step",
    "sample_from_noise",
    "sample",
]

SMOOTHINGS = ("add_k", "kneser_ney")
"""The smoothings: ``"add_k"`` (Lidstone) or interpolated ``"kneser_ney"``."""


# --------------------------------------------------------------------------------------
# argument checks (trace-time)
# --------------------------------------------------------------------------------------


def _check_scalar(name: str, value, low: float, high: float) -> None:
    """A finite scalar in ``[low, high]`` (skipped when traced)."""
    checks.ndim(name, value, 0, "(a scalar)")
    checks.in_range(name, value, low, high)


def _check_model(model) -> None:
    if not isinstance(model, NGramModel):
        raise TypeError(f"model must be an NGramModel (from ngram.fit), got {type(model).__name__}")


def _check_tokens(name: str, tokens) -> jax.Array:
    """``tokens`` as a 1-D int32 array (an empty one may have any dtype)."""
    tokens = jnp.asarray(tokens)
    checks.ndim(name, tokens, 1, "(a 1-D array of token ids)")
    if tokens.size:
        checks.integer_array(name, tokens)
    return tokens.astype(jnp.int32)


# --------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------


def fit(
    tokens: jax.Array,
    *,
    n: int,
    vocab_size: int,
    alpha: float = 1.0,
    smoothing: str = "add_k",
    discount: float = 0.75,
    _dense_budget: int = DENSE_BUDGET,
) -> NGramModel:
    """Counts every k-gram, k = 1..n, of a corpus (one jitted program).

    Args:
      tokens: (N,) integer token ids in ``[0, vocab_size)``; any N >= 0.
      n: the order: tokens are predicted from the n - 1 before them.
      vocab_size: V; ``N * V`` must be below 2**31 (the ids are int32).
      alpha: add-k's k >= 0 (1 is Laplace). Used when ``smoothing="add_k"``.
      smoothing: ``"add_k"`` or ``"kneser_ney"`` (interpolated, one discount).
      discount: Kneser-Ney's D in [0, 1]. Used when ``smoothing="kneser_ney"``.
      _dense_budget: private, for tests: the most entries of a dense counting table
        (0: sort every order). The tables do not depend on it.

    Returns:
      An :class:`NGramModel` (a pytree; n, vocab_size and smoothing are static).

    Example:
      >>> tokens = jnp.array([0, 1, 2] * 10)
      >>> model = fit(tokens, n=3, vocab_size=3, smoothing="kneser_ney")
      >>> round(float(perplexity(model, tokens)), 2)
      1.0
    """
    n = checks.positive_int("n", n)
    vocab_size = checks.positive_int("vocab_size", vocab_size)
    checks.one_of("smoothing", smoothing, SMOOTHINGS)
    _check_scalar("alpha", alpha, 0.0, np.inf)
    _check_scalar("discount", discount, 0.0, 1.0)
    tokens = _check_tokens("tokens", tokens)
    num_tokens = tokens.shape[0]
    if max(num_tokens, 1) * vocab_size >= SENTINEL:
        raise ValueError(
            f"len(tokens) * vocab_size must be < 2**31 - 1 for int32 n-gram ids, got "
            f"{num_tokens} * {vocab_size}"
        )
    if checks.is_concrete(tokens) and tokens.size:  # out-of-range ids cannot be counted
        # the range in int32 on the host first; the message (a float64 pass) only on failure
        host = np.asarray(tokens)
        if host.min() < 0 or host.max() >= vocab_size:
            checks.token_ids("tokens", tokens, vocab_size)
    else:
        checks.token_ids("tokens", tokens, vocab_size)
    dtype = jnp.result_type(float)
    return NGramModel(
        **count_tables(tokens, n=n, vocab_size=vocab_size, budget=_dense_budget),
        alpha=jnp.asarray(alpha, dtype),
        discount=jnp.asarray(discount, dtype),
        n=n,
        vocab_size=vocab_size,
        smoothing=smoothing,
    )


# --------------------------------------------------------------------------------------
# smoothed probabilities
# --------------------------------------------------------------------------------------


def _probs(model: NGramModel, history: jax.Array, num_valid: jax.Array, targets: jax.Array):
    """P(target | history) for each target.

    history: (n - 1,) int32, of which the last ``num_valid`` are real tokens; targets: (m,).
    Returns (m,) floats. The model of order ``top = min(num_valid + 1, n)`` answers.
    """
    n, V = model.n, model.vocab_size
    dtype = model.alpha.dtype
    top = jnp.minimum(num_valid + 1, n)
    target_ok = in_vocab(targets, V)
    w = jnp.clip(targets, 0, V - 1)
    uniform = jnp.full(targets.shape, 1.0 / V, dtype)  # order 0
    lower = uniform  # P at the order below k (Kneser-Ney recursion)
    answer = uniform  # add-k: the estimate at order `top`
    lookups = context_lookups(model, history, w)
    for k in range(1, n + 1):
        is_top = k == top
        rank, seen, index, found = lookups[k - 1]
        c = jnp.where(found, model.gram_counts[k - 1][index], 0).astype(dtype)  # c(u w)
        c_total = jnp.where(seen, model.context_totals[k - 1][rank], 0).astype(dtype)
        if model.smoothing == "add_k":
            # Jurafsky & Martin eq. 3.26: (c(u w) + k) / (c(u .) + k V); uniform if 0 / 0
            denom = c_total + model.alpha * V
            safe = jnp.where(denom > 0, denom, 1.0)
            p_k = jnp.where(denom > 0, (c + model.alpha) / safe, uniform)
            answer = jnp.where(is_top, p_k, answer)
            continue
        c_types = jnp.where(seen, model.context_types[k - 1][rank], 0).astype(dtype)
        if k < n:
            # below the top order, Kneser-Ney counts continuations N1+(. u w) (C&G eq. 17)
            cc = jnp.where(found, model.gram_continuations[k - 1][index], 0).astype(dtype)
            cc_total = jnp.where(seen, model.continuation_totals[k - 1][rank], 0)
            cc_types = jnp.where(seen, model.continuation_types[k - 1][rank], 0)
            a = jnp.where(is_top, c, cc)
            a_total = jnp.where(is_top, c_total, cc_total.astype(dtype))
            a_types = jnp.where(is_top, c_types, cc_types.astype(dtype))
        else:
            a, a_total, a_types = c, c_total, c_types
        d = model.discount
        safe = jnp.where(a_total > 0, a_total, 1.0)
        # C&G eq. (16): max(a - D, 0) / a(u .) + D N1+(u .) / a(u .) * P(w | u')
        p_k = jnp.maximum(a - d, 0.0) / safe + d * a_types / safe * lower
        p_k = jnp.where(a_total > 0, p_k, lower)  # unseen context: back off wholly
        lower = jnp.where(k <= top, p_k, lower)
        answer = lower
    return jnp.where(target_ok, answer, 0.0)


def _history(context: jax.Array, n: int):
    """The last n - 1 tokens of a context, left-padded, and how many are real."""
    m = context.shape[0]
    padded = jnp.concatenate([jnp.full((n - 1,), -1, jnp.int32), context.astype(jnp.int32)])
    return padded[padded.shape[0] - (n - 1) :], jnp.asarray(min(m, n - 1), jnp.int32)


@jax.jit
def _next_token_probs(model: NGramModel, context: jax.Array) -> jax.Array:
    history, num_valid = _history(context, model.n)
    return _probs(model, history, num_valid, jnp.arange(model.vocab_size, dtype=jnp.int32))


def next_token_probs(model: NGramModel, context: jax.Array) -> jax.Array:
    """P(w | context) for every w in the vocabulary.

    Args:
      model: a fitted :class:`NGramModel`.
      context: (m,) int token ids, any m >= 0; the last ``min(m, n - 1)`` are used, so a
        short context is answered by the model of order ``m + 1``. Out-of-vocabulary ids
        are allowed (contexts containing them count as unseen).

    Returns:
      (vocab_size,) floats that sum to 1.
    """
    _check_model(model)
    return _next_token_probs(model, _check_tokens("context", context))


@jax.jit
def _log_prob(model: NGramModel, tokens: jax.Array) -> jax.Array:
    n = model.n
    T = tokens.shape[0]
    padded = jnp.concatenate([jnp.full((n - 1,), -1, jnp.int32), tokens])  # (T + n - 1,)
    windows = padded[jnp.arange(T)[:, None] + jnp.arange(n - 1)[None, :]]  # (T, n - 1)
    num_valid = jnp.minimum(jnp.arange(T, dtype=jnp.int32), n - 1)  # (T,)
    p = jax.vmap(lambda h, v, t: _probs(model, h, v, t[None])[0])(windows, num_valid, tokens)
    return jnp.log(p)  # log 0 = -inf for out-of-vocabulary targets


def log_prob(model: NGramModel, tokens: jax.Array) -> jax.Array:
    """Per-token log-probabilities ``log P(x_i | x_{i-n+1} .. x_{i-1})``.

    Args:
      model: a fitted :class:`NGramModel`.
      tokens: (T,) int token ids. Token ``i < n - 1`` is conditioned on the i tokens before
        it (the order-(i + 1) model); an out-of-vocabulary target gets ``-inf``.

    Returns:
      (T,) floats.
    """
    _check_model(model)
    return _log_prob(model, _check_tokens("tokens", tokens))


def perplexity(model: NGramModel, tokens: jax.Array) -> jax.Array:
    """``exp(-mean_i log P(x_i | context))`` over all T tokens. tokens: (T,), T >= 1."""
    _check_model(model)
    tokens = _check_tokens("tokens", tokens)
    if tokens.shape[0] < 1:
        raise ValueError("tokens must hold at least one token to have a perplexity")
    return jnp.exp(-jnp.mean(_log_prob(model, tokens)))


# --------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------


def sample_step(
    model: NGramModel,
    history: jax.Array,
    num_valid: jax.Array,
    gumbel: jax.Array,
    temperature: jax.Array | float = 1.0,
) -> jax.Array:
    """One deterministic sampling step given its noise (the Gumbel-max trick).

    ``argmax_w (log P(w | history) / T + g_w)`` with ``g ~ Gumbel(0, 1)`` is a draw from
    ``softmax(log P / T)`` (Gumbel 1954; Maddison et al. 2014).

    Args:
      history: (n - 1,) int32 of which the last ``num_valid`` are real tokens.
      num_valid: () int32.
      gumbel: (vocab_size,) standard Gumbel noise.
      temperature: T > 0.

    Returns:
      () int32, the next token.

    Example:
      >>> model = fit(jnp.array([0, 1, 2] * 4), n=2, vocab_size=3, alpha=0.0)  # a cycle
      >>> int(sample_step(model, jnp.array([1]), jnp.array(1), jnp.zeros(3)))  # after 1 comes 2
      2
    """
    _check_model(model)
    checks.shape("history", history, (model.n - 1,))
    checks.integer_array("history", history)
    checks.ndim("num_valid", num_valid, 0, "(a scalar)")
    if checks.is_concrete(num_valid):
        checks.int_in_range("num_valid", int(num_valid), 0, model.n - 1)
    checks.shape("gumbel", gumbel, (model.vocab_size,))
    checks.ndim("temperature", temperature, 0, "(a scalar)")
    checks.positive("temperature", temperature)
    p = _probs(model, history, num_valid, jnp.arange(model.vocab_size, dtype=jnp.int32))
    logp = jnp.log(jnp.where(p > 0, p, 1.0)) / temperature
    # a zero-probability token is removed with finfo.min, never -inf arithmetic
    logits = jnp.where(p > 0, logp, jnp.finfo(logp.dtype).min)
    return jnp.argmax(logits + gumbel).astype(jnp.int32)


def sample_from_noise(
    model: NGramModel, prefix: jax.Array, gumbel: jax.Array, temperature: jax.Array | float = 1.0
) -> jax.Array:
    """The sampling loop over :func:`sample_step` with all noise given (one ``lax.scan``).

    prefix: (p,) int32; gumbel: (length, vocab_size) finite -> (length,) int32 new tokens;
    temperature: T > 0.

    Example:
      >>> model = fit(jnp.array([0, 1, 2] * 4), n=2, vocab_size=3, alpha=0.0)  # a cycle
      >>> sample_from_noise(model, jnp.array([2]), jnp.zeros((4, 3))).tolist()
      [0, 1, 2, 0]
    """
    _check_model(model)
    prefix = _check_tokens("prefix", prefix)
    checks.shape("gumbel", gumbel, (None, model.vocab_size))
    checks.finite("gumbel", gumbel)
    checks.ndim("temperature", temperature, 0, "(a scalar)")
    checks.positive("temperature", temperature)
    return _sample_from_noise(model, prefix, gumbel, temperature)


@jax.jit
def _sample_from_noise(
    model: NGramModel, prefix: jax.Array, gumbel: jax.Array, temperature: jax.Array | float
) -> jax.Array:
    n = model.n
    history, num_valid = _history(prefix, n)

    def step(carry, g):
        # carry: the last n - 1 tokens (n - 1,) and how many of them are real ()
        history, num_valid = carry
        token = sample_step(model, history, num_valid, g, temperature)
        history = jnp.concatenate([history, token[None]])[1:]  # shift the window
        return (history, jnp.minimum(num_valid + 1, n - 1)), token

    _, tokens = jax.lax.scan(step, (history, num_valid), gumbel)
    return tokens


def sample(
    key: jax.Array,
    model: NGramModel,
    prefix: jax.Array,
    length: int,
    *,
    temperature: float = 1.0,
) -> jax.Array:
    """Draws ``length`` tokens after ``prefix``, one jitted ``lax.scan``.

    Args:
      key: a JAX key.
      model: a fitted :class:`NGramModel`.
      prefix: (p,) int token ids to continue (p may be 0).
      length: number of new tokens, >= 0.
      temperature: T > 0; samples from ``softmax(log P / T)`` (T = 1: the model itself).

    Returns:
      (length,) int32 new tokens (the prefix not included).

    Example:
      >>> model = fit(jnp.array([0, 1, 2] * 4), n=2, vocab_size=3, alpha=0.0)  # a cycle
      >>> sample(jax.random.key(0), model, jnp.array([0]), 5).tolist()
      [1, 2, 0, 1, 2]
    """
    _check_model(model)
    prefix = _check_tokens("prefix", prefix)
    length = checks.nonnegative_int("length", length)
    checks.ndim("temperature", temperature, 0, "(a scalar)")
    checks.positive("temperature", temperature)
    gumbel = jax.random.gumbel(key, (length, model.vocab_size), model.alpha.dtype)
    return _sample_from_noise(model, prefix, gumbel, temperature)
