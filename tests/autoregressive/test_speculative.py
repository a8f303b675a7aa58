"""Speculative sampling: the emitted tokens follow the target's law.

* exactly, by enumeration (NumPy oracle) over every draft and accept/reject outcome, for a
  draft close to and one far from the target;
* the JAX rule equals the oracle's on shared noise;
* by chi-square on samples of the JAX verify and of ``speculative_generate`` (both one
  sequence at a time and batched in lockstep);
* greedy speculative decoding equals greedy decoding of the target (real KV caches, so
  the roll-back by position is exercised).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.autoregressive import decoding as dec
from genjax.autoregressive import oracle
from genjax.testing import chi_square_test
from tests.autoregressive.test_decoding import HistoryModel, TableModel

V = 3
K = 2


def _table(seed, scale=1.5):
    return np.asarray(scale * jax.random.normal(jax.random.key(seed), (2, V, V)), np.float64)


TARGET = _table(0)
DRAFTS = {"close": TARGET + 0.2 * _table(1, 1.0), "far": _table(2, 2.5)}


def _next_probs(table):
    def fn(seq):  # logits of x_{t+1} = table[t % 2, x_t], as TableModel
        return oracle.softmax(table[(len(seq) - 1) % 2, seq[-1]])

    return fn


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_verify_law_is_target_law_by_enumeration(draft):
    prefix = [1, 0]
    p_fn, q_fn = _next_probs(TARGET), _next_probs(DRAFTS[draft])
    law = oracle.speculative_law(q_fn, p_fn, prefix, K, V)
    assert abs(sum(law.values()) - 1.0) < 1e-12
    got = oracle.complete_law(law, p_fn, prefix, K + 1, V)
    want = oracle.sequence_law(p_fn, prefix, K + 1, V)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)  # exact up to rounding
    # the draft's own law differs: the test would catch "emit the draft"
    assert np.abs(oracle.sequence_law(q_fn, prefix, K + 1, V) - want).max() > 1e-3


def test_verify_matches_oracle_on_shared_noise():
    rng = np.random.default_rng(0)
    n, k, v = 100, 3, 5
    q = rng.dirichlet(np.ones(v) * 0.7, size=(n, k))
    p = rng.dirichlet(np.ones(v) * 0.7, size=(n, k + 1))
    q[:10, 0] = p[:10, 0]  # p = q rows: always accepted
    x = np.array([[rng.choice(v, p=q[i, j]) for j in range(k)] for i in range(n)])
    u = rng.uniform(size=(n, k))
    g = rng.gumbel(size=(n, k + 1, v))
    toks, num = jax.vmap(dec.speculative_verify_from_noise)(
        *(jnp.asarray(a) for a in (x, q, p, u, g))
    )
    toks, num = np.asarray(toks), np.asarray(num)
    for i in range(n):
        want, n_acc = oracle.speculative_verify(u[i], g[i], x[i], q[i], p[i])
        assert num[i] == n_acc
        assert list(toks[i, : n_acc + 1]) == want and (toks[i, n_acc + 1 :] == -1).all()
    assert 0 < num.mean() < k and (num == k).any() and (num == 0).any()


def _pair_counts(first, second):
    return np.bincount(first * V + second, minlength=V * V)


@pytest.mark.slow
def test_speculative_sampling_chi_square():
    n = 4000
    prefix = np.array([1, 0])
    p_fn = _next_probs(TARGET)
    want3 = oracle.sequence_law(p_fn, prefix, 3, V).ravel()
    target = TableModel(jnp.asarray(TARGET, jnp.float32), V, 16)
    rates = {}
    for name, table in DRAFTS.items():
        q_fn = _next_probs(table)
        # 1) the verify rule alone: drafts from q, first two tokens (completed from p)
        rng = np.random.default_rng(1)
        xs = np.zeros((n, K), int)
        qs, ps = np.zeros((n, K, V)), np.zeros((n, K + 1, V))
        for i in range(n):
            ctx = list(prefix)
            for j in range(K):
                qs[i, j], ps[i, j] = q_fn(np.asarray(ctx)), p_fn(np.asarray(ctx))
                xs[i, j] = rng.choice(V, p=qs[i, j])
                ctx.append(xs[i, j])
            ps[i, K] = p_fn(np.asarray(ctx))
        toks, num = dec.speculative_verify_batch(
            jax.random.key(3),
            jnp.asarray(xs),
            jnp.asarray(qs, jnp.float32),
            jnp.asarray(ps, jnp.float32),
        )
        toks, num = np.asarray(toks), np.asarray(num)
        second = np.where(
            num >= 1, toks[:, 1], [rng.choice(V, p=p_fn(np.r_[prefix, t])) for t in toks[:, 0]]
        )
        want2 = oracle.sequence_law(p_fn, prefix, 2, V).ravel()
        chi_square_test(_pair_counts(toks[:, 0], second), want2)
        # 2) the whole loop: pairs of rows in lockstep (one cut per round for both), one
        # pair per key (vmap), so multi-token commits and the lockstep cut both occur
        draft = TableModel(jnp.asarray(table, jnp.float32), V, 16)
        keys = jax.random.split(jax.random.key(4), n // 2)
        pair = jnp.tile(jnp.asarray(prefix), (2, 1))
        out, stats = jax.vmap(
            lambda key, d=draft, p=pair: dec.speculative_generate(
                key, target, d, p, max_new_tokens=3, num_draft=K
            )
        )(keys)
        out = np.asarray(out).reshape(n, 3)
        chi_square_test(np.bincount(out @ np.array([V * V, V, 1]), minlength=V**3), want3)
        rates[name] = float(jnp.mean(stats["acceptance_rate"]))
        assert float(jnp.mean(stats["tokens_per_round"])) > 1.0  # multi-token commits
    assert rates["close"] > rates["far"] + 0.1 and rates["far"] > 0.0, rates


def test_greedy_speculative_equals_greedy_target():
    """A real (position-masked) cache: rolled-back drafts must not leak into the logits."""
    target = HistoryModel(jax.random.normal(jax.random.key(0), (7, 7)), 7, 24)
    draft = HistoryModel(target.table + 0.8 * jax.random.normal(jax.random.key(1), (7, 7)), 7, 24)
    prompt = jnp.array([[1, 2, 3], [4, 5, 6], [0, 0, 1]])
    want = dec.generate(jax.random.key(0), target, prompt, max_new_tokens=10, temperature=0.0)
    got, stats = dec.speculative_generate(
        jax.random.key(1), target, draft, prompt, max_new_tokens=10, num_draft=3, temperature=0.0
    )
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert 0.2 < float(stats["acceptance_rate"]) < 1.0  # some drafts rejected, some not


@pytest.mark.parametrize("prompt_len", [1, 5])
def test_draft_equal_to_target_accepts_every_draft(prompt_len):
    """A draft that IS the target (a real position-masked cache) must accept every draft,
    so its cache must hold every committed token: after a round that accepts all k drafts
    the last one, x_k, is fed to the draft with the next round's first call. A draft that
    missed it (a stale or empty row) proposes from another distribution and is rejected
    now and then. A 1-token prompt covers the clamped first round."""
    model = HistoryModel(2.0 * jax.random.normal(jax.random.key(2), (7, 7)), 7, 40)
    prompt = jnp.arange(1, 1 + 2 * prompt_len).reshape(2, prompt_len) % 7
    k, n = 3, 24
    got, stats = dec.speculative_generate(
        jax.random.key(k), model, model, prompt, max_new_tokens=n, num_draft=k
    )
    assert got.shape == (2, n) and float(stats["acceptance_rate"]) == 1.0, stats
    assert int(stats["rounds"]) == math.ceil(n / (k + 1))  # k + 1 tokens every round


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(num_draft=0), "num_draft"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_new_tokens=12), "max_new_tokens"),
        (dict(top_p=2.0), "top_p"),
    ],
)
def test_speculative_rejects_bad_arguments(bad, match):
    m = TableModel(jnp.asarray(TARGET, jnp.float32), V, 16)
    args = dict(max_new_tokens=3, num_draft=2) | bad
    with pytest.raises(ValueError, match=match):
        dec.speculative_generate(jax.random.key(0), m, m, jnp.zeros((1, 2), jnp.int32), **args)
    with pytest.raises(ValueError, match="target_probs"):
        dec.speculative_verify(
            jax.random.key(0),
            jnp.zeros((2,), jnp.int32),
            jnp.ones((2, 3)) / 3,
            jnp.ones((2, 3)) / 3,
        )


def test_enumeration_helpers_are_laws():
    p_fn = _next_probs(TARGET)
    law = oracle.sequence_law(p_fn, [0], 2, V)
    assert abs(law.sum() - 1.0) < 1e-12
    assert all(law[a, b] > 0 for a, b in itertools.product(range(V), repeat=2))
