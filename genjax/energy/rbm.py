"""The binary-binary restricted Boltzmann machine: block Gibbs, CD-k / PCD, exact and AIS log Z.

Papers: Hinton (2002), "Training products of experts by minimizing contrastive divergence"
(CD-k); Tieleman (2008), "Training restricted Boltzmann machines using approximations to the
likelihood gradient" (persistent CD); Salakhutdinov & Murray (2008), "On the quantitative
analysis of deep belief networks" (annealed importance sampling of log Z, sec. 3-4).

The model, for visible ``v in {0,1}^V`` and hidden ``h in {0,1}^H``::

    E(v, h) = -v^T W h - b^T v - c^T h,          p(v, h) = exp(-E(v, h)) / Z
    F(v)    = -b^T v - sum_j softplus(c_j + v^T W_{:, j})       (p(v) = exp(-F(v)) / Z)
    p(h_j = 1 | v) = sigmoid(c_j + v^T W_{:, j}),  p(v_i = 1 | h) = sigmoid(b_i + W_{i, :} h)

Samplers take their uniforms explicitly (``gibbs_step(params, v, noise)``), so that the NumPy
oracle (:mod:`genjax.energy.oracle_rbm`) reproduces a chain bit for bit; a unit turns on when
its uniform is below its conditional probability. Visible states are float arrays of 0/1.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from genjax import checks

__all__ = [
    "RBMParams",
    "init_params",
    "energy",
    "free_energy",
    "hidden_probs",
    "visible_probs",
    "gibbs_noise",
    "gibbs_step",
    "gibbs_sample",
    "gibbs_sample_from_noise",
    "cd_loss",
    "pcd_loss",
    "all_binary",
    "log_partition",
    "base_rate_bias",
    "ais_noise",
    "ais_log_weights_from_noise",
    "ais_log_partition",
    "log_likelihood",
]

MAX_ENUMERATED = 20  # 2^20 states: the largest layer log_partition will enumerate


class RBMParams(NamedTuple):
    """Weights ``W`` ``(V, H)``, visible biases ``b`` ``(V,)``, hidden biases ``c`` ``(H,)``.

    >>> params = RBMParams(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(2))
    >>> [round(f, 4) for f in free_energy(params, jnp.ones((1, 3))).tolist()]  # -H log 2
    [-1.3863]
    """

    W: jax.Array
    b: jax.Array
    c: jax.Array


def _check_params(params: Any) -> tuple[int, int]:
    checks.instance("params", params, RBMParams, "an RBMParams(W, b, c)")
    checks.ndim("params.W", params.W, 2, "(V, H)")
    v, h = jnp.shape(params.W)
    checks.shape("params.b", params.b, (v,))
    checks.shape("params.c", params.c, (h,))
    for name in ("W", "b", "c"):
        checks.finite(f"params.{name}", getattr(params, name))
    return v, h


def _check_visible(name: str, v: Any, num_visible: int) -> None:
    checks.shape(name, v, (None, num_visible))
    checks.floating(name, v)


def init_params(key: jax.Array, num_visible: int, num_hidden: int, *, scale: float = 0.01,
                visible_bias: Any = None) -> RBMParams:  # fmt: skip
    """``W ~ N(0, scale^2)``, ``c = 0``, ``b = visible_bias`` (default 0; Hinton's guide
    sets it to the data's log base rates, :func:`base_rate_bias`).

    >>> p = init_params(jax.random.key(0), 6, 4)
    >>> p.W.shape, p.b.shape, p.c.shape
    ((6, 4), (6,), (4,))
    """
    num_visible = checks.positive_int("num_visible", num_visible)
    num_hidden = checks.positive_int("num_hidden", num_hidden)
    checks.nonnegative("scale", scale)
    b = jnp.zeros((num_visible,), jnp.float32) if visible_bias is None else visible_bias
    checks.shape("visible_bias", b, (num_visible,))
    checks.finite("visible_bias", b)
    w = scale * jax.random.normal(key, (num_visible, num_hidden), jnp.float32)
    return RBMParams(w, jnp.asarray(b, jnp.float32), jnp.zeros((num_hidden,), jnp.float32))


def energy(params: RBMParams, v: jax.Array, h: jax.Array) -> jax.Array:
    """``E(v, h) = -v^T W h - b^T v - c^T h`` for ``v`` ``(batch, V)``, ``h`` ``(batch, H)``
    -> ``(batch,)``.

    >>> p = RBMParams(jnp.ones((2, 1)), jnp.zeros(2), jnp.ones(1))
    >>> energy(p, jnp.array([[1.0, 1.0]]), jnp.array([[1.0]])).tolist()
    [-3.0]
    """
    nv, nh = _check_params(params)
    _check_visible("v", v, nv)
    checks.shape("h", h, (jnp.shape(v)[0], nh))
    return -jnp.einsum("bi,ij,bj->b", v, params.W, h) - v @ params.b - h @ params.c


def free_energy(params: RBMParams, v: jax.Array) -> jax.Array:
    """``F(v) = -b^T v - sum_j softplus(c_j + v^T W_j)`` for ``v`` ``(batch, V)`` ->
    ``(batch,)`` (the hidden layer summed out: ``exp(-F(v)) = sum_h exp(-E(v, h))``).

    >>> p = RBMParams(jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(1))
    >>> round(float(free_energy(p, jnp.zeros((1, 2)))[0]), 4)  # -log 2
    -0.6931
    """
    nv, _ = _check_params(params)
    _check_visible("v", v, nv)
    return _free_energy(params, v)


def _free_energy(params: RBMParams, v: jax.Array) -> jax.Array:
    return -v @ params.b - jnp.sum(jax.nn.softplus(params.c[None] + v @ params.W), axis=-1)


def hidden_probs(params: RBMParams, v: jax.Array) -> jax.Array:
    """``p(h = 1 | v) = sigmoid(c + v W)``: ``v`` ``(batch, V)`` -> ``(batch, H)``.

    >>> p = RBMParams(jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(1))
    >>> hidden_probs(p, jnp.ones((1, 2))).tolist()
    [[0.5]]
    """
    nv, _ = _check_params(params)
    _check_visible("v", v, nv)
    return jax.nn.sigmoid(params.c[None] + v @ params.W)


def visible_probs(params: RBMParams, h: jax.Array) -> jax.Array:
    """``p(v = 1 | h) = sigmoid(b + W h)``: ``h`` ``(batch, H)`` -> ``(batch, V)``.

    >>> p = RBMParams(jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(1))
    >>> visible_probs(p, jnp.ones((1, 1))).tolist()
    [[0.5, 0.5]]
    """
    _, nh = _check_params(params)
    _check_visible("h", h, nh)
    return jax.nn.sigmoid(params.b[None] + h @ params.W.T)


def _gibbs(params: RBMParams, v: jax.Array, u_h: jax.Array, u_v: jax.Array):
    # One sweep v -> h -> v': a unit is on when its uniform is below its conditional.
    h = (u_h < jax.nn.sigmoid(params.c[None] + v @ params.W)).astype(v.dtype)  # h ~ p(h | v)
    v_new = (u_v < jax.nn.sigmoid(params.b[None] + h @ params.W.T)).astype(v.dtype)  # v' ~ p(v | h)
    return v_new, h


def gibbs_noise(key: jax.Array, num_steps: int, batch: int, num_visible: int,
                num_hidden: int) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """The uniforms of ``num_steps`` sweeps: ``(u_h (steps, batch, H), u_v (steps, batch, V))``.

    >>> u_h, u_v = gibbs_noise(jax.random.key(0), 3, 2, 5, 4)
    >>> u_h.shape, u_v.shape
    ((3, 2, 4), (3, 2, 5))
    """
    for name, n in (("num_steps", num_steps), ("batch", batch), ("num_visible", num_visible),
                    ("num_hidden", num_hidden)):  # fmt: skip
        checks.positive_int(name, n)
    hk, vk = jax.random.split(key)
    return (jax.random.uniform(hk, (num_steps, batch, num_hidden)),
            jax.random.uniform(vk, (num_steps, batch, num_visible)))  # fmt: skip


def gibbs_step(params: RBMParams, v: jax.Array,
               noise: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """One block-Gibbs sweep on given uniforms ``noise = (u_h (batch, H), u_v (batch, V))``:
    ``h = [u_h < p(h=1|v)]``, ``v' = [u_v < p(v=1|h)]``. Returns ``(v' (batch, V), h)``.

    >>> p = RBMParams(jnp.zeros((2, 1)), jnp.array([5.0, -5.0]), jnp.zeros(1))
    >>> v, h = gibbs_step(p, jnp.zeros((1, 2)), (jnp.full((1, 1), 0.4), jnp.full((1, 2), 0.5)))
    >>> v.tolist(), h.tolist()
    ([[1.0, 0.0]], [[1.0]])
    """
    nv, nh = _check_params(params)
    _check_visible("v", v, nv)
    u_h, u_v = noise
    checks.shape("noise[0]", u_h, (jnp.shape(v)[0], nh))
    checks.shape("noise[1]", u_v, (jnp.shape(v)[0], nv))
    return _gibbs(params, v, u_h, u_v)


@jax.jit
def _chain(params: RBMParams, v0: jax.Array, u_h: jax.Array, u_v: jax.Array) -> jax.Array:
    def body(v, u):
        return _gibbs(params, v, *u)[0], None

    return jax.lax.scan(body, v0, (u_h, u_v))[0]


def gibbs_sample_from_noise(params: RBMParams, v0: jax.Array,
                            noise: tuple[jax.Array, jax.Array]) -> jax.Array:  # fmt: skip
    """``steps`` sweeps from ``v0`` ``(batch, V)`` on ``noise = (u_h (steps, batch, H),
    u_v (steps, batch, V))`` (one compiled ``lax.scan``); returns the last ``v``.

    >>> p = init_params(jax.random.key(0), 5, 4)
    >>> gibbs_sample_from_noise(p, jnp.zeros((2, 5)), gibbs_noise(jax.random.key(1), 3, 2, 5, 4)).shape
    (2, 5)
    """  # noqa: E501
    nv, nh = _check_params(params)
    _check_visible("v0", v0, nv)
    u_h, u_v = noise
    checks.shape("noise[0]", u_h, (None, jnp.shape(v0)[0], nh))
    checks.shape("noise[1]", u_v, (jnp.shape(u_h)[0], jnp.shape(v0)[0], nv))
    return _chain(params, v0, u_h, u_v)


def gibbs_sample(key: jax.Array, params: RBMParams, v0: jax.Array, *, num_steps: int) -> jax.Array:
    """``num_steps`` block-Gibbs sweeps of every chain ``v0`` ``(batch, V)`` -> ``(batch, V)``.

    >>> p = init_params(jax.random.key(0), 5, 4)
    >>> v = gibbs_sample(jax.random.key(1), p, jnp.zeros((3, 5)), num_steps=10)
    >>> v.shape, bool(jnp.all((v == 0) | (v == 1)))
    ((3, 5), True)
    """
    nv, nh = _check_params(params)
    _check_visible("v0", v0, nv)
    num_steps = checks.positive_int("num_steps", num_steps)
    return _chain(params, v0, *gibbs_noise(key, num_steps, jnp.shape(v0)[0], nv, nh))


def _surrogate(params: RBMParams, batch: jax.Array, negatives: jax.Array):
    # grad of mean F(data) - mean F(sg(neg)) = -(<dlog p*/dtheta>_data - <.>_model) (Hinton 2002)
    negatives = jax.lax.stop_gradient(negatives)
    f_data = jnp.mean(_free_energy(params, batch))
    f_neg = jnp.mean(_free_energy(params, negatives))
    metrics = {"free_energy_data": f_data, "free_energy_negatives": f_neg}
    return f_data - f_neg, metrics


def cd_loss(params: RBMParams, batch: jax.Array, key: jax.Array, *,
            k: int = 1) -> tuple[jax.Array, dict]:  # fmt: skip
    """CD-k (Hinton 2002): negatives are ``k`` Gibbs sweeps started at the data ``batch``
    ``(batch, V)``; the loss ``mean F(data) - mean F(stop_gradient(negatives))`` has the CD
    gradient. Returns ``(loss, metrics)``.

    >>> p = init_params(jax.random.key(0), 5, 4)
    >>> loss, m = cd_loss(p, jnp.ones((8, 5)), jax.random.key(1), k=1)
    >>> loss.shape, sorted(m)
    ((), ['free_energy_data', 'free_energy_negatives', 'reconstruction_error'])
    """
    nv, nh = _check_params(params)
    _check_visible("batch", batch, nv)
    k = checks.positive_int("k", k)
    negatives = _chain(params, batch, *gibbs_noise(key, k, jnp.shape(batch)[0], nv, nh))
    loss, metrics = _surrogate(params, batch, negatives)
    # CD's chains start at the data, so the mean squared change is the reconstruction error.
    metrics["reconstruction_error"] = jnp.mean((batch - jax.lax.stop_gradient(negatives)) ** 2)
    return loss, metrics


def pcd_loss(params: RBMParams, batch: jax.Array, key: jax.Array, chains: jax.Array, *,
             k: int = 1) -> tuple[jax.Array, tuple[dict, jax.Array]]:  # fmt: skip
    """Persistent CD (Tieleman 2008): negatives continue the persistent ``chains``
    ``(n, V)`` by ``k`` sweeps instead of restarting at the data. Returns
    ``(loss, (metrics, new_chains))``; feed ``new_chains`` to the next update.

    >>> p = init_params(jax.random.key(0), 5, 4)
    >>> loss, (m, chains) = pcd_loss(p, jnp.ones((8, 5)), jax.random.key(1), jnp.zeros((4, 5)))
    >>> chains.shape
    (4, 5)
    """
    nv, nh = _check_params(params)
    _check_visible("batch", batch, nv)
    _check_visible("chains", chains, nv)
    k = checks.positive_int("k", k)
    new = _chain(params, chains, *gibbs_noise(key, k, jnp.shape(chains)[0], nv, nh))
    new = jax.lax.stop_gradient(new)
    loss, metrics = _surrogate(params, batch, new)
    return loss, (metrics, new)


def all_binary(n: int) -> jax.Array:
    """Every binary vector of length ``n``: ``(2^n, n)`` float32, row ``i`` the bits of ``i``.

    >>> all_binary(2).tolist()
    [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """
    n = checks.int_in_range("n", n, 0, MAX_ENUMERATED)
    idx = jnp.arange(2**n)[:, None]
    return ((idx >> jnp.arange(n - 1, -1, -1)[None]) & 1).astype(jnp.float32)


def log_partition(params: RBMParams) -> jax.Array:
    """Exact ``log Z`` by enumerating the smaller layer (at most 2^20 states).

    Over ``v``: ``log Z = logsumexp_v -F(v)``. Over ``h`` (the visible layer summed out):
    ``log Z = logsumexp_h [c^T h + sum_i softplus(b_i + W_i h)]``.

    >>> p = RBMParams(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(2))
    >>> round(float(log_partition(p)), 4) == round(5 * math.log(2), 4)
    True
    """
    nv, nh = _check_params(params)
    if min(nv, nh) > MAX_ENUMERATED:
        raise ValueError(f"params: log_partition enumerates the smaller layer, which must "
                         f"have <= {MAX_ENUMERATED} units, got V={nv}, H={nh}")  # fmt: skip
    if nv <= nh:
        return jax.nn.logsumexp(-_free_energy(params, all_binary(nv)))
    h = all_binary(nh)
    return jax.nn.logsumexp(
        h @ params.c + jnp.sum(jax.nn.softplus(params.b[None] + h @ params.W.T), -1)
    )


def base_rate_bias(data: jax.Array, *, eps: float = 0.05) -> jax.Array:
    """The base-rate visible biases ``logit(mean_n v_n)`` of ``data`` ``(n, V)``, the means
    clipped to ``[eps, 1 - eps]`` (Salakhutdinov & Murray 2008, sec. 4.2: AIS's base RBM).

    >>> base_rate_bias(jnp.array([[1.0, 0.0], [1.0, 1.0]]), eps=0.1).round(4).tolist()
    [2.1972, 0.0]
    """
    checks.ndim("data", data, 2, "(n, V)")
    checks.in_range("eps", eps, 0.0, 0.5, low_open=True, high_open=True)
    m = jnp.clip(jnp.mean(data, axis=0), eps, 1.0 - eps)
    return jnp.log(m) - jnp.log1p(-m)


def ais_noise(key: jax.Array, num_temperatures: int, num_chains: int, num_visible: int,
              num_hidden: int) -> tuple[jax.Array, jax.Array, jax.Array]:  # fmt: skip
    """AIS uniforms: ``(u0 (chains, V), u_h (K-1, chains, H), u_v (K-1, chains, V))`` for
    ``K = num_temperatures`` (``len(betas) - 1``) steps, one Gibbs sweep between each.

    >>> [u.shape for u in ais_noise(jax.random.key(0), 4, 2, 5, 3)]
    [(2, 5), (3, 2, 3), (3, 2, 5)]
    """
    checks.int_in_range("num_temperatures", num_temperatures, 2, 10**7)
    k0, k1 = jax.random.split(key)
    u_h, u_v = gibbs_noise(k1, num_temperatures - 1, num_chains, num_visible, num_hidden)
    return jax.random.uniform(k0, (num_chains, num_visible)), u_h, u_v


@jax.jit
def _ais(params: RBMParams, base_bias: jax.Array, betas: jax.Array, u0, u_h, u_v) -> jax.Array:
    def log_f(beta, v):
        # log p*_beta(v) = (1-beta) b_A^T v + beta b^T v + sum_j softplus(beta (c_j + v^T W_j))
        # (Salakhutdinov & Murray 2008, eq. 15, base RBM with W_A = 0, c_A = 0, H_A = 0).
        lin = ((1.0 - beta) * base_bias + beta * params.b) @ v.T
        return lin + jnp.sum(jax.nn.softplus(beta * (params.c[None] + v @ params.W)), -1)

    def transition(beta, v, uh, uv):
        # Gibbs sweep leaving p*_beta invariant: the intermediate RBM is (beta W, mixed b, beta c).
        h = (uh < jax.nn.sigmoid(beta * (params.c[None] + v @ params.W))).astype(v.dtype)
        vb = (1.0 - beta) * base_bias[None] + beta * (params.b[None] + h @ params.W.T)
        return (uv < jax.nn.sigmoid(vb)).astype(v.dtype)

    v1 = (u0 < jax.nn.sigmoid(base_bias)[None]).astype(jnp.float32)  # v_1 ~ p_0 exactly
    logw = log_f(betas[1], v1) - log_f(betas[0], v1)  # w_1 = p*_1(v_1) / p*_0(v_1)

    def body(carry, xs):
        v, lw = carry
        b_prev, b_next, uh, uv = xs
        v = transition(b_prev, v, uh, uv)  # v_k ~ T_{k-1}(v_{k-1}, .)
        return (v, lw + log_f(b_next, v) - log_f(b_prev, v)), None

    (_, logw), _ = jax.lax.scan(body, (v1, logw), (betas[1:-1], betas[2:], u_h, u_v))
    return logw


def _check_ais(params: RBMParams, base_bias: Any, betas: Any) -> tuple[int, int, jax.Array]:
    nv, nh = _check_params(params)
    base_bias = jnp.zeros((nv,), jnp.float32) if base_bias is None else base_bias
    checks.shape("base_bias", base_bias, (nv,))
    checks.finite("base_bias", base_bias)
    checks.ndim("betas", betas, 1, "(K + 1,)")
    if jnp.shape(betas)[0] < 2:
        raise ValueError(f"betas must hold at least 2 temperatures, got {jnp.shape(betas)}")
    if checks.is_concrete(betas):  # the values are checked when known at trace time
        b = np.asarray(betas, np.float64)
        checks.in_range("betas", b, 0.0, 1.0)
        if b[0] != 0.0 or b[-1] != 1.0 or not (b[1:] >= b[:-1]).all():
            raise ValueError("betas must increase from 0 to 1 (betas[0] = 0, betas[-1] = 1)")
    return nv, nh, jnp.asarray(base_bias, jnp.float32)


def ais_log_weights_from_noise(params: RBMParams, betas: jax.Array, noise: tuple, *,
                               base_bias: Any = None) -> jax.Array:  # fmt: skip
    """AIS importance log-weights ``(chains,)`` on given uniforms (:func:`ais_noise`):
    ``log w = sum_k log p*_k(v_k) - log p*_{k-1}(v_k)`` from the base-rate RBM (``W = 0``,
    visible biases ``base_bias`` ``(V,)``) at ``betas[0] = 0`` to ``params`` at
    ``betas[-1] = 1``. ``log Z = log Z_0 + log mean w``, ``log Z_0 = H log 2 + sum softplus(b_A)``.

    >>> p = init_params(jax.random.key(0), 5, 3)
    >>> betas = jnp.linspace(0.0, 1.0, 4)
    >>> ais_log_weights_from_noise(p, betas, ais_noise(jax.random.key(1), 3, 2, 5, 3)).shape
    (2,)
    """
    nv, nh, base_bias = _check_ais(params, base_bias, betas)
    u0, u_h, u_v = noise
    k = jnp.shape(betas)[0] - 1
    checks.shape("noise[0]", u0, (None, nv))
    checks.shape("noise[1]", u_h, (k - 1, jnp.shape(u0)[0], nh))
    checks.shape("noise[2]", u_v, (k - 1, jnp.shape(u0)[0], nv))
    return _ais(params, base_bias, jnp.asarray(betas, jnp.float32), u0, u_h, u_v)


def ais_log_partition(key: jax.Array, params: RBMParams, *, num_chains: int, betas: Any,
                      base_bias: Any = None) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """``log Z`` by annealed importance sampling (Salakhutdinov & Murray 2008) with
    ``num_chains`` independent runs over the temperatures ``betas`` ``(K + 1,)`` (0 to 1).

    Returns ``(log_z, stderr)``: ``log Z_0 + log mean w`` and its delta-method standard
    error ``std(w) / (sqrt(n) mean w)``. The estimate of ``Z`` is unbiased, so ``log Z`` is
    biased low (Jensen) by about ``stderr^2 / 2``.

    >>> p = RBMParams(jnp.zeros((4, 2)), jnp.zeros(4), jnp.zeros(2))
    >>> z, se = ais_log_partition(jax.random.key(0), p, num_chains=8, betas=jnp.linspace(0, 1, 5))
    >>> round(float(z), 4) == round(6 * math.log(2), 4), float(se)
    (True, 0.0)
    """
    num_chains = checks.positive_int("num_chains", num_chains)
    nv, nh, base_bias = _check_ais(params, base_bias, betas)
    noise = ais_noise(key, jnp.shape(betas)[0] - 1, num_chains, nv, nh)
    logw = _ais(params, base_bias, jnp.asarray(betas, jnp.float32), *noise)
    log_z0 = nh * math.log(2.0) + jnp.sum(jax.nn.softplus(base_bias))  # Z_0 = 2^H prod(1+e^b_A)
    m = jnp.max(logw)
    r = jnp.exp(logw - m)  # w / max w, overflow-free
    log_z = log_z0 + m + jnp.log(jnp.mean(r))
    ddof = 1 if num_chains > 1 else 0  # one chain: no spread to measure, stderr reads 0
    stderr = jnp.std(r, ddof=ddof) / (jnp.sqrt(num_chains) * jnp.mean(r))
    return log_z, stderr


@jax.jit
def _log_likelihood(params: RBMParams, v: jax.Array, log_z: jax.Array) -> jax.Array:
    return -_free_energy(params, v) - log_z  # log p(v) = -F(v) - log Z


def log_likelihood(params: RBMParams, v: jax.Array, log_z: Any) -> jax.Array:
    """``log p(v) = -F(v) - log Z`` for ``v`` ``(batch, V)`` -> ``(batch,)``, given ``log_z``
    (exact, :func:`log_partition`, or AIS, :func:`ais_log_partition`).

    >>> p = RBMParams(jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(1))
    >>> log_likelihood(p, jnp.ones((1, 2)), log_partition(p)).round(4).tolist()  # 1/4
    [-1.3863]
    """
    nv, _ = _check_params(params)
    _check_visible("v", v, nv)
    checks.finite("log_z", log_z)
    return _log_likelihood(params, v, jnp.asarray(log_z, jnp.float32))
