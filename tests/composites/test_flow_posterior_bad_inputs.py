"""Bad and extreme inputs to the flow posterior's public names (genjax.composites.flow_posterior).

Each ``reject`` case must raise a ValueError/TypeError naming the argument; each ``extreme``
case is inside the documented domain and must stay finite (and correct where a ``check`` is
given).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import composites, vae
from genjax.testing import BadInput, assert_handled

SHAPE = (2, 2, 1)
KEY = jax.random.key(0)
X = jax.random.uniform(jax.random.key(1), (3, *SHAPE))
BASE = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(4,))
BASE_G = vae.mlp_vae(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(4,), likelihood="gaussian")
PLANAR = composites.FlowPosteriorVAE(
    BASE, flow="planar", num_flows=2, rngs=nnx.Rngs(1), context_hidden=(4,)
)
IAF_G = composites.FlowPosteriorVAE(
    BASE_G,
    flow="iaf",
    num_flows=2,
    rngs=nnx.Rngs(1),
    context_hidden=(4,),
    context_dim=2,
    made_hidden=(4,),
)
AE = vae.mlp_autoencoder(SHAPE, 2, rngs=nnx.Rngs(0), hidden_sizes=(4,))
PIXELS = 255.0 * jax.random.uniform(jax.random.key(2), (3, *SHAPE))  # raw 0-255 pixels


def _saturated_iaf():
    """IAF_G with read-outs of 1e4: alpha_raw ~ 1e4 is clamped to |alpha| < 3."""
    model = jax.tree.map(lambda a: a, IAF_G)
    for made in model.mades:
        made.layers[-1].kernel[...] = jnp.full(made.layers[-1].kernel[...].shape, 1e4)
    return model


def _finite(result):
    return all(bool(np.all(np.isfinite(np.asarray(v)))) for v in jax.tree.leaves(result))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    # --- constructors -----------------------------------------------------------------
    _case(
        "flow_posterior.FlowPosteriorVAE: unknown flow",
        lambda: composites.FlowPosteriorVAE(BASE, flow="radial", num_flows=1, rngs=nnx.Rngs(0)),
        "flow",
    ),
    _case(
        "flow_posterior.FlowPosteriorVAE: num_flows 0",
        lambda: composites.FlowPosteriorVAE(BASE, flow="iaf", num_flows=0, rngs=nnx.Rngs(0)),
        "num_flows",
    ),
    _case(
        "flow_posterior.FlowPosteriorVAE: vae not a VAE",
        lambda: composites.FlowPosteriorVAE(AE, flow="iaf", num_flows=1, rngs=nnx.Rngs(0)),
        "vae",
    ),
    _case(
        "flow_posterior.FlowPosteriorVAE: scale_clamp 0",
        lambda: composites.FlowPosteriorVAE(
            BASE, flow="iaf", num_flows=1, rngs=nnx.Rngs(0), scale_clamp=0.0
        ),
        "scale_clamp",
    ),
    _case(
        "flow_posterior.FlowPosteriorVAE: context_dim < 0",
        lambda: composites.FlowPosteriorVAE(
            BASE, flow="iaf", num_flows=1, rngs=nnx.Rngs(0), context_dim=-1
        ),
        "context_dim",
    ),
    _case(
        "flow_posterior.ContextMADE: hidden width below latent_dim",
        lambda: composites.ContextMADE(2, 3, (2,), rngs=nnx.Rngs(0)),
        "hidden_sizes",
    ),
    _case(
        "flow_posterior.ContextMADE: order not a permutation",
        lambda: composites.ContextMADE(2, 3, (4,), rngs=nnx.Rngs(0), order=(1, 1, 2)),
        "order",
    ),
    _case(
        "flow_posterior.mlp_flow_vae: latent_dim 0",
        lambda: composites.mlp_flow_vae(SHAPE, 0, flow="iaf", num_flows=1, rngs=nnx.Rngs(0)),
        "latent_dim",
    ),
    # --- losses and samplers ----------------------------------------------------------
    _case(
        "flow_posterior.flow_elbo_loss: batch of the wrong shape",
        lambda: composites.flow_elbo_loss(PLANAR, jnp.zeros((3, 3, 3, 1)), KEY),
        "batch",
    ),
    _case(
        "flow_posterior.flow_elbo_loss: batch with NaN",
        lambda: composites.flow_elbo_loss(PLANAR, X.at[0, 0, 0, 0].set(jnp.nan), KEY),
        "batch",
    ),
    _case(
        "flow_posterior.flow_elbo_loss: model a plain VAE",
        lambda: composites.flow_elbo_loss(BASE, X, KEY),
        "model",
    ),
    _case(
        "flow_posterior.flow_elbo_terms: eps of the wrong shape",
        lambda: composites.flow_elbo_terms(PLANAR, X, jnp.zeros((3, 3))),
        "eps",
    ),
    _case(
        "flow_posterior.flow_log_weights: eps without the k axis",
        lambda: composites.flow_log_weights(PLANAR, X, jnp.zeros((3, 2))),
        "eps",
    ),
    _case(
        "flow_posterior.flow_posterior_sample_from_noise: eps for another batch",
        lambda: composites.flow_posterior_sample_from_noise(IAF_G, X, jnp.zeros((4, 2))),
        "eps",
    ),
    _case(
        "flow_posterior.flow_posterior_sample: x of the wrong shape",
        lambda: composites.flow_posterior_sample(KEY, IAF_G, jnp.zeros((3, 4))),
        "batch",
    ),
    _case(
        "flow_posterior.flow_iwae_bound: k = 0",
        lambda: composites.flow_iwae_bound(PLANAR, X, KEY, k=0),
        "k",
    ),
    _case(
        "flow_posterior.flow_iwae_bound: chunk_size does not divide k",
        lambda: composites.flow_iwae_bound(PLANAR, X, KEY, k=6, chunk_size=4),
        "chunk_size",
    ),
    # --- valid extremes ---------------------------------------------------------------
    _case(
        "flow_posterior.flow_elbo_loss: Gaussian decoder on raw 0-255 pixels",
        lambda: composites.flow_elbo_loss(IAF_G, PIXELS, KEY),
        kind="extreme",
        check=_finite,
    ),
    _case(
        "flow_posterior.flow_iwae_bound: planar posterior on raw 0-255 pixels",
        lambda: composites.flow_iwae_bound(PLANAR, PIXELS, KEY, k=4),
        kind="extreme",
        check=_finite,
    ),
    _case(
        "flow_posterior.flow_posterior_sample_from_noise: IAF read-out 1e4 (clamped scale)",
        lambda: composites.flow_posterior_sample_from_noise(_saturated_iaf(), X, jnp.ones((3, 2))),
        kind="extreme",
        # |alpha_d| < c = 3 per step and coordinate: |sum log det| < K L c = 12
        check=lambda r: (
            _finite(r)
            and bool(
                jnp.all(
                    jnp.abs(
                        r[1]
                        - composites.flow_elbo_terms(_saturated_iaf(), X, jnp.ones((3, 2)))[
                            "log_q0"
                        ]
                    )
                    <= 12.0
                )
            )
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
