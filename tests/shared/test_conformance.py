"""The shared parts under genjax.testing's conformance suites.

Shared solvers: :func:`genjax.ode.solve` (every method) with an ``nnx.Module`` vector field
as its model. ``solve`` takes no key, so the suite's "sampler" integrates from a start drawn
from the key: ``x1 = solve(model, x0 ~ N(0, I), 0, 1)`` -- which is how continuous flows and
flow matching sample. The shared modules hold no loss (losses live in the families), so
``assert_loss_conforms`` has nothing to run over here.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from genjax import ode
from genjax.nn import MLP
from genjax.testing import SamplerCase, assert_sampler_conforms, count_compilations

DIM = 2
BATCH = 3


class Field(nnx.Module):
    """A neural vector field ``f(t, y) = MLP([y, t])``: y (batch, DIM), t () -> (batch, DIM)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.net = MLP(DIM + 1, [8], DIM, rngs=rngs)

    def __call__(self, t: jax.Array, y: jax.Array) -> jax.Array:
        tt = jnp.broadcast_to(t.astype(y.dtype), y.shape[:1])[:, None]  # (batch, 1)
        return self.net(jnp.concatenate([y, tt], axis=-1))  # (batch, DIM)


@functools.cache
def fields(n: int = 2) -> tuple[Field, ...]:
    """``n`` fields of one architecture, initialised from different keys."""
    return tuple(Field(rngs=nnx.Rngs(jax.random.key(i))) for i in range(n))


def solve_from_key(key, model, *, method, **kwargs):
    x0 = jax.random.normal(key, (BATCH, DIM))  # (batch, DIM) start ~ N(0, I)
    return ode.solve(model, x0, 0.0, 1.0, method=method, **kwargs)


def _bad(**kwargs):
    return lambda: ode.solve(fields()[0], jnp.zeros((BATCH, DIM)), 0.0, 1.0, **kwargs)


BAD_ARGUMENTS = (
    (_bad(num_steps=0), "num_steps"),
    (_bad(method="rk45"), "method"),
    (_bad(rtol=-1.0, method="dopri5"), "rtol"),
    (_bad(atol=0.0, method="dopri5"), "atol"),
    (_bad(max_steps=0, method="dopri5"), "max_steps"),
    (lambda: ode.solve(fields()[0], jnp.zeros((BATCH, DIM), jnp.int32), 0.0, 1.0), "y0"),
    (lambda: ode.solve(fields()[0], jnp.zeros((BATCH, DIM)), jnp.zeros(2), 1.0), "t0"),
)


@pytest.mark.parametrize("method", list(ode.TABLEAUS))
def test_solve_conformance(method):
    # Few steps (a loose tolerance for dopri5) keep the eager (disable_jit) run short.
    options = {"num_steps": 3} if method in ode.FIXED_STEP_METHODS else {"rtol": 1e-2,
                                                                         "atol": 1e-2}
    case = SamplerCase(
        name=f"ode.solve[{method}]",
        sample=functools.partial(solve_from_key, method=method, **options),
        models=fields(),
        bad_arguments=BAD_ARGUMENTS if method == "rk4" else (),
    )
    assert_sampler_conforms(case)


def test_solve_ten_vector_fields_compile_once():
    many = fields(10)
    y0 = jnp.ones((BATCH, DIM))
    first = ode.solve(many[0], y0, 0.0, 1.0, num_steps=4)
    with count_compilations() as compiled:
        outs = [ode.solve(m, y0, 0.0, 1.0, num_steps=4) for m in many[1:]]
    assert compiled[0] == 0, f"{compiled[0]} compilations for 9 new weight sets"
    # The weights are arguments of the program, not constants: each field its own answer.
    finals = [first, *outs]
    assert len({tuple(jnp.ravel(x).tolist()) for x in finals}) == len(finals)
    # A new closure (a plain function, static) compiles anew -- documented, and checked.
    with count_compilations() as compiled:
        ode.solve(lambda t, y: many[0](t, y), y0, 0.0, 1.0, num_steps=4)
    assert compiled[0] >= 1
