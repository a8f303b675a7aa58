"""Bad and extreme inputs of the RBM (genjax.energy.rbm), in the shared BadInput format.

Each reject case names the argument it gets wrong; ``assert_handled`` requires a
``ValueError``/``TypeError`` naming it. The extremes (saturated weights and biases) must
stay finite and, where a closed form exists, correct. Tiny shapes, at most 2 sweeps.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.energy import oracle_rbm as O
from genjax.energy import rbm as R
from genjax.testing import BadInput, assert_handled

KEY = jax.random.key(0)
P = R.init_params(KEY, 4, 3, scale=0.5)  # V = 4, H = 3
V = jnp.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])  # (2, 4)
NOISE = (jnp.full((2, 3), 0.5), jnp.full((2, 4), 0.5))
BETAS = jnp.linspace(0.0, 1.0, 3)
BIG = R.RBMParams(100.0 * jnp.ones((4, 3)), -50.0 * jnp.ones(4), 30.0 * jnp.ones(3))
FLAT = R.RBMParams(jnp.zeros((4, 3)), jnp.full((4,), 20.0), jnp.full((3,), -20.0))
# W = 0: Z = prod_i (1 + e^b_i) prod_j (1 + e^c_j), in closed form
FLAT_LOG_Z = 4 * math.log1p(math.exp(20.0)) + 3 * math.log1p(math.exp(-20.0))


def _ais(**kw):
    args = {"num_chains": 2, "betas": BETAS, **kw}
    return R.ais_log_partition(KEY, args.pop("params", P), **args)


CASES: list[BadInput] = [
    BadInput("free_energy: params a dict",
             lambda: R.free_energy({"W": P.W, "b": P.b, "c": P.c}, V), "params"),
    BadInput("free_energy: params.W 1-D",
             lambda: R.free_energy(R.RBMParams(P.b, P.b, P.c), V), "params.W"),
    BadInput("free_energy: params.b of the wrong length",
             lambda: R.free_energy(R.RBMParams(P.W, P.c, P.c), V), "params.b"),
    BadInput("free_energy: params.W with NaN",
             lambda: R.free_energy(R.RBMParams(P.W.at[0, 0].set(jnp.nan), P.b, P.c), V),
             "params.W"),
    BadInput("free_energy: v of the wrong width", lambda: R.free_energy(P, V[:, :3]), "v"),
    BadInput("free_energy: v integer", lambda: R.free_energy(P, V.astype(jnp.int32)), "v"),
    BadInput("energy: h of the wrong width", lambda: R.energy(P, V, jnp.ones((2, 2))), "h"),
    BadInput("hidden_probs: v 1-D", lambda: R.hidden_probs(P, V[0]), "v"),
    BadInput("visible_probs: h of the wrong width",
             lambda: R.visible_probs(P, jnp.ones((2, 4))), "h"),
    BadInput("gibbs_step: noise of the wrong shape",
             lambda: R.gibbs_step(P, V, (NOISE[1], NOISE[1])), "noise"),
    BadInput("gibbs_sample: num_steps = 0",
             lambda: R.gibbs_sample(KEY, P, V, num_steps=0), "num_steps"),
    BadInput("gibbs_sample: v0 of the wrong width",
             lambda: R.gibbs_sample(KEY, P, V[:, :2], num_steps=1), "v0"),
    BadInput("gibbs_sample_from_noise: noise of the wrong length",
             lambda: R.gibbs_sample_from_noise(P, V, (NOISE[0][None], NOISE[1][None][:, :1])),
             "noise"),
    BadInput("cd_loss: k = 0", lambda: R.cd_loss(P, V, KEY, k=0), "k"),
    BadInput("cd_loss: batch of the wrong width", lambda: R.cd_loss(P, V[:, :1], KEY), "batch"),
    BadInput("pcd_loss: chains of the wrong width",
             lambda: R.pcd_loss(P, V, KEY, jnp.zeros((3, 5))), "chains"),
    BadInput("init_params: num_hidden = 0", lambda: R.init_params(KEY, 4, 0), "num_hidden"),
    BadInput("init_params: scale < 0", lambda: R.init_params(KEY, 4, 3, scale=-1.0), "scale"),
    BadInput("init_params: visible_bias of the wrong length",
             lambda: R.init_params(KEY, 4, 3, visible_bias=jnp.zeros(3)), "visible_bias"),
    BadInput("all_binary: n = 21", lambda: R.all_binary(21), "n"),
    BadInput("log_partition: both layers of 21 units",
             lambda: R.log_partition(R.init_params(KEY, 21, 21)), "params"),
    BadInput("base_rate_bias: eps = 0.5", lambda: R.base_rate_bias(V, eps=0.5), "eps"),
    BadInput("base_rate_bias: data 1-D", lambda: R.base_rate_bias(V[0]), "data"),
    BadInput("ais_log_partition: num_chains = 0", lambda: _ais(num_chains=0), "num_chains"),
    BadInput("ais_log_partition: betas not starting at 0",
             lambda: _ais(betas=jnp.array([0.1, 0.5, 1.0])), "betas"),
    BadInput("ais_log_partition: betas decreasing",
             lambda: _ais(betas=jnp.array([0.0, 0.7, 0.5, 1.0])), "betas"),
    BadInput("ais_log_partition: betas above 1",
             lambda: _ais(betas=jnp.array([0.0, 1.5, 1.0])), "betas"),
    BadInput("ais_log_partition: one temperature", lambda: _ais(betas=jnp.zeros(1)), "betas"),
    BadInput("ais_log_partition: base_bias of the wrong length",
             lambda: _ais(base_bias=jnp.zeros(3)), "base_bias"),
    BadInput("ais_log_weights_from_noise: noise of the wrong length",
             lambda: R.ais_log_weights_from_noise(P, BETAS, R.ais_noise(KEY, 3, 2, 4, 3)),
             "noise"),
    BadInput("log_likelihood: log_z NaN", lambda: R.log_likelihood(P, V, jnp.nan), "log_z"),
    # valid extremes: saturated units stay finite and exact
    BadInput("free_energy: weights of 100 (softplus saturates)",
             lambda: R.free_energy(BIG, V), kind="extreme",
             check=lambda f: np.allclose(f, O.free_energy(*map(np.asarray, BIG), np.asarray(V)),
                                         rtol=1e-6)),
    BadInput("gibbs_step: weights of 100 give binary states",
             lambda: R.gibbs_step(BIG, V, NOISE)[0], kind="extreme",
             check=lambda v: set(np.unique(np.asarray(v))) <= {0.0, 1.0}),
    BadInput("log_partition: weights of 100 equal the oracle's enumeration",
             lambda: R.log_partition(BIG), kind="extreme",
             check=lambda z: abs(float(z) - O.log_partition_brute_force(
                 *map(lambda a: np.asarray(a, np.float64), BIG))) < 1e-3),
    BadInput("ais_log_partition: W = 0, biases of +-20 give the closed form",
             lambda: _ais(params=FLAT, base_bias=FLAT.b)[0], kind="extreme",
             check=lambda z: abs(float(z) - FLAT_LOG_Z) < 1e-3),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case: BadInput) -> None:
    assert_handled(case)
