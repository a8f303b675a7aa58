"""GAN: one DCGAN training step (D and G) — genjax (jit) vs the NumPy oracle and PyTorch.

Workload, the ``dcgan`` recipe's networks on the 8x8 digits, batch 64, latent 32:
generator ``z -> Linear -> (2, 2, 64) -> GroupNorm/ReLU -> ConvT(4, s2) 32 -> GroupNorm/ReLU
-> ConvT(4, s2) 1 -> tanh``; discriminator ``Conv(4, s2) 32 -> lReLU -> Conv(4, s2) 64 ->
lReLU -> Linear 128 -> lReLU -> Linear 1``.

* ``dcgan train step``: one discriminator update (minimax loss, one-sided label smoothing
  0.1) and one generator update (non-saturating loss), Adam(2e-4, 0.5) for each, EMA of
  the generator — genjax: :func:`genjax.gan.gan_trainer`'s step in one ``jax.jit``;
  PyTorch 2 eager: the same two updates written the usual way (``zero_grad`` /
  ``backward`` / ``step``), the same layer shapes (PyTorch's ``padding=1`` with kernel 4,
  stride 2 gives the same sizes as flax's ``"SAME"``). Two PyTorch rows: its default
  thread count (what a user gets: one per core, as XLA uses) and one thread (the row of
  the earlier tables). Each alternates with genjax
  (:func:`genjax.bench.harness.time_paired`: blocks of calls of each, 5 pairs); a PyTorch
  row's ``ratio`` is the median of the per-pair ratios torch / genjax.
* ``losses``: the two losses on 64 + 64 logits — genjax jitted vs the NumPy oracle
  (float64). The oracle has no networks or gradients, so this is where it enters.
* ``gradient penalty``: WGAN-GP's penalty of a one-hidden-layer tanh critic on 64 images,
  genjax (``jax.grad`` inside one jit) vs the oracle's hand-written gradient, per example.

PyTorch is an optional peer (``pip install torch``); its row is skipped with a note when
absent. ``speedup`` = the oracle's time / genjax's.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "gan"
BATCH = 64
LATENT = 32
NOTES = (
    "DCGAN (the dcgan recipe's networks) on 8x8 digits, batch 64: one D update (minimax, "
    "label smoothing 0.1) + one G update (non-saturating), Adam; PyTorch eager with its "
    "default thread count and with one thread. losses / gradient penalty: genjax jitted vs "
    "the float64 NumPy oracle. "
    "ratio (PyTorch rows) = torch time / genjax time, median of 5 alternated pairs; "
    "speedup (oracle rows) = oracle time / genjax time."
)


def _torch_step(x_batch: np.ndarray):
    """PyTorch's DCGAN step over the same networks: ``(step, version)``."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(LATENT, 2 * 2 * 64)
            self.net = nn.Sequential(
                nn.GroupNorm(8, 64), nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.GroupNorm(8, 32), nn.ReLU(),
                nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh(),
            )

        def forward(self, z):
            return self.net(self.project(z).view(-1, 64, 2, 2))

    d = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
        nn.Linear(2 * 2 * 64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1),
    )
    g = G()
    g_ema = G()
    g_ema.load_state_dict(g.state_dict())
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    real = torch.from_numpy(np.ascontiguousarray(np.transpose(x_batch, (0, 3, 1, 2)))) * 2 - 1

    def step():
        z = torch.randn(BATCH, LATENT)
        fake = g(z)
        opt_d.zero_grad()
        real_logits, fake_logits = d(real)[:, 0], d(fake.detach())[:, 0]
        loss_d = bce(real_logits, torch.full_like(real_logits, 0.9)) + bce(
            fake_logits, torch.zeros_like(fake_logits))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        fake_logits = d(g(torch.randn(BATCH, LATENT)))[:, 0]
        loss_g = bce(fake_logits, torch.ones_like(fake_logits))
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(g_ema.parameters(), g.parameters(), strict=True):
                e.mul_(0.999).add_(p, alpha=0.001)
        return loss_g.detach()

    return step, torch.__version__


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from genjax import data, gan
    from genjax.gan import oracle

    repeats = 5 if quick else 20
    x = data.load("digits")[:BATCH]  # (64, 8, 8, 1) in [0, 1]
    g_mod = gan.DCGANGenerator(LATENT, (8, 8, 1), base_channels=16, rngs=nnx.Rngs(0))
    d_mod = gan.DCGANDiscriminator((8, 8, 1), base_channels=32, feature_dim=128,
                                   rngs=nnx.Rngs(1))
    trainer = gan.gan_trainer(
        g_optimizer=optax.adam(2e-4, b1=0.5), d_optimizer=optax.adam(2e-4, b1=0.5),
        loss="nonsaturating", label_smoothing=0.1, ema_decay=0.999,
    )
    # the two Modules are traced leaves of the state; the old state's buffers are donated
    step = jax.jit(trainer.step, donate_argnums=0)
    state = [trainer.init(g_mod, d_mod)]
    batch = 2.0 * jnp.asarray(x) - 1.0
    keys = iter(jax.random.split(jax.random.key(0), 1000))

    def genjax_step():
        state[0], info = step(state[0], batch, next(keys))  # a training loop's call
        return info.loss

    case = f"dcgan train step, batch {BATCH}"
    try:
        import torch

        default_threads = torch.get_num_threads()
        torch_step, torch_version = _torch_step(np.asarray(x))
    except ImportError as err:
        t = time_jax(genjax_step, repeats=repeats)
        rows = [Row(SUITE, case, "genjax", t.compile_s, t.run_s, {}),
                Row(SUITE, case, "pytorch (absent)", None, float("nan"),
                    {"skipped": f"torch not importable ({err})"})]
    else:
        rows = []
        for threads in dict.fromkeys((default_threads, 1)):  # the default first, then 1
            torch.set_num_threads(threads)
            # alternated, so that the machine's drift cancels in the ratio (median of pairs)
            paired = time_paired(genjax_step, torch_step, pairs=3 if quick else 5,
                                 repeats=repeats // 4)
            name = f"{threads} thread{'s' if threads > 1 else ''}"
            if not rows:
                rows.append(Row(SUITE, case, "genjax", paired.a.compile_s, paired.a.run_s, {}))
            rows.append(Row(SUITE, case, f"pytorch {torch_version} (eager, {name})",
                            paired.b.compile_s, paired.b.run_s,
                            {"ratio": paired.ratio, "pairs": paired.pairs,
                             "genjax_run_s": paired.a.run_s}))
        torch.set_num_threads(default_threads)

    # losses: genjax jitted vs the float64 oracle on the same logits
    rng = np.random.default_rng(0)
    real_l, fake_l = rng.normal(size=BATCH), rng.normal(size=BATCH)

    @jax.jit
    def losses(r, f):
        return gan.minimax_d(r, f, label_smoothing=0.1) + gan.nonsaturating_g(f)

    t_l = time_jax(losses, jnp.asarray(real_l), jnp.asarray(fake_l), repeats=repeats)
    t_lo = time_host(lambda: oracle.minimax_d(real_l, fake_l, 0.1) + oracle.nonsaturating_g(fake_l),
                     repeats=repeats)
    lcase = f"minimax_d + nonsaturating_g, {BATCH} logits"
    rows += [Row(SUITE, lcase, "genjax", t_l.compile_s, t_l.run_s, {}),
             Row(SUITE, lcase, "oracle (numpy f64)", t_lo.compile_s, t_lo.run_s,
                 {"speedup": t_lo.run_s / t_l.run_s})]

    # gradient penalty of a tanh critic on images: jax.grad vs the oracle's hand gradient
    params = (rng.normal(0, 0.3, (64, 32)), rng.normal(0, 0.1, 32), rng.normal(0, 1.0, 32), 0.0)
    w1, b1, w2, b2 = (jnp.asarray(p, jnp.float32) for p in params)
    critic = lambda v: jnp.tanh(v.reshape(v.shape[0], -1) @ w1 + b1[None]) @ w2 + b2  # noqa: E731
    fake = rng.uniform(size=x.shape).astype(np.float32)
    gp = jax.jit(lambda k, r, f: gan.gradient_penalty(k, critic, r, f))
    t_gp = time_jax(gp, jax.random.key(1), jnp.asarray(x), jnp.asarray(fake), repeats=repeats)
    eps = rng.uniform(size=BATCH)
    t_gpo = time_host(oracle.gradient_penalty, lambda v: oracle.tanh_critic_grad(params, v),
                      x, fake, eps, repeats=repeats)
    gcase = f"gradient penalty, tanh critic, {BATCH} images"
    rows += [Row(SUITE, gcase, "genjax", t_gp.compile_s, t_gp.run_s, {}),
             Row(SUITE, gcase, "oracle (numpy f64)", t_gpo.compile_s, t_gpo.run_s,
                 {"speedup": t_gpo.run_s / t_gp.run_s})]
    return rows
