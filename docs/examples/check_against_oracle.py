"""Worked example: check your own DDPM sampler against genjax's NumPy oracle on shared noise.

You have written DDPM ancestral sampling (Ho, Jain & Abbeel 2020, Algorithm 2) in JAX and want
to know that it is right. genjax's :mod:`genjax.diffusion.oracle` computes the same loop in
NumPy float64, written from the paper's equations; :func:`genjax.diffusion.ddpm_sample_from_noise`
is genjax's jitted version. Three steps:

1. make the randomness an argument: draw ``x_T`` and every step's noise ``z`` once, up front;
2. run your sampler, the oracle and genjax on the same model (here the *exact* noise
   prediction of the 8-mode ring, so no network or training is involved) and the same noise;
3. compare with :func:`genjax.testing.assert_close_to_oracle`, whose tolerance is read from
   the dtype (float32 against float64, a whole trajectory: ``kind="long_loop"``).

The script also shows that the check has teeth: a sampler with one wrong coefficient fails it.
Run it with ``python docs/examples/check_against_oracle.py``; CI runs it on every change.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genjax import oracle_targets
from genjax.diffusion import analytic_eps_fn, ddpm_sample_from_noise, oracle, schedules
from genjax.targets import ring
from genjax.testing import assert_close_to_oracle


def my_ddpm_sample_from_noise(
    eps_model, betas: jax.Array, x_T: jax.Array, noises: jax.Array, *, mean_scale: float = 1.0
) -> jax.Array:
    """Your sampler: Algorithm 2 of Ho et al. (2020) as one ``lax.scan`` over ``t = T-1..0``.

    ``x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps(x_t, t)) / sqrt(alpha_t) + sigma_t z``
    with ``sigma_t^2 = beta_t`` and ``z = 0`` at ``t = 0``.

    Args:
      eps_model: ``eps_model(x_t, t) -> eps`` with ``x_t: (batch, D)``, ``t: (batch,)``.
      betas: ``(T,)`` the noise schedule.
      x_T: ``(batch, D)`` the starting noise.
      noises: ``(T, batch, D)``; ``noises[i]`` is used at ``t = T-1-i``.
      mean_scale: ``1.0`` is Algorithm 2; anything else is a deliberate bug.

    Returns:
      ``(batch, D)`` the samples ``x_0``.
    """
    alphas = 1.0 - betas
    alpha_bars = jnp.cumprod(alphas)

    def step(x, inputs):
        t, z = inputs
        eps = eps_model(x, jnp.full((x.shape[0],), t))
        mean = (x - betas[t] / jnp.sqrt(1.0 - alpha_bars[t]) * eps) / jnp.sqrt(alphas[t])
        sigma = jnp.where(t > 0, jnp.sqrt(betas[t]), 0.0)
        return mean_scale * mean + sigma * z, None

    ts = jnp.arange(betas.shape[0])[::-1]
    x_0, _ = jax.lax.scan(step, x_T, (ts, noises))
    return x_0


def main() -> None:
    """Run the three samplers on shared noise and compare them with the oracle."""
    T, batch = 100, 512
    schedule = schedules.linear(T, beta_end=0.05)
    target = ring()  # 8 Gaussians on a circle of radius 4: the exact eps is known
    model = analytic_eps_fn(target, schedule)  # a pytree: model(x_t, t) -> E[eps | x_t]

    # 1. The randomness, drawn once.
    k_start, k_steps = jax.random.split(jax.random.key(0))
    x_T = jax.random.normal(k_start, (batch, 2))
    noises = jax.random.normal(k_steps, (T, batch, 2))

    # 2a. The oracle: NumPy float64 throughout, the exact eps of the noised mixture.
    betas64 = np.asarray(schedule.betas, dtype=np.float64)
    alpha_bars64 = np.cumprod(1.0 - betas64)
    params = [np.asarray(a, dtype=np.float64) for a in (target.weights, target.means, target.covs)]

    def oracle_eps(x_t: np.ndarray, t: np.ndarray) -> np.ndarray:
        ab = alpha_bars64[int(t[0])]
        return oracle_targets.mixture_eps(*params, x_t, np.sqrt(ab), np.sqrt(1.0 - ab))

    expected = oracle.ddpm_loop(oracle_eps, betas64, np.asarray(x_T), np.asarray(noises))

    # 2b. Yours and genjax's, jitted, float32.
    mine = jax.jit(my_ddpm_sample_from_noise)(model, schedule.betas, x_T, noises)
    theirs = jax.jit(ddpm_sample_from_noise)(model, x_T, noises, schedule)

    # 3. Compare: float32 trajectories of T steps against float64.
    assert_close_to_oracle(mine, expected, kind="long_loop", err_msg="my sampler")
    assert_close_to_oracle(theirs, expected, kind="long_loop", err_msg="genjax")
    print(f"my sampler == oracle == genjax on {batch} chains of {T} steps")

    # The check has teeth: a 1% error in the posterior mean's scale fails it.
    wrong = jax.jit(my_ddpm_sample_from_noise)(model, schedule.betas, x_T, noises, mean_scale=1.01)
    try:
        assert_close_to_oracle(wrong, expected, kind="long_loop")
    except AssertionError:
        print("a sampler with a 1% wrong coefficient is caught")
    else:
        raise SystemExit("the oracle comparison did not catch a wrong sampler")


if __name__ == "__main__":
    main()
