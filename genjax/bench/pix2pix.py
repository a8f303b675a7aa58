"""pix2pix: the U-Net generator, the PatchGAN and one training step — genjax (jit) vs the
NumPy oracle and PyTorch.

Workload, the ``pix2pix`` recipe's networks on 8x8 digits, batch 64:
generator ``Conv(4, s2) 16 -> lReLU -> Conv(4, s2) 32 -> lReLU -> Conv(4, s2) 64 -> ReLU ->
ConvT(4, s2) 32 -> [skip] -> ReLU -> ConvT(4, s2) 16 -> [skip] -> ReLU -> ConvT(4, s2) 1 ->
tanh`` (the U-Net of :class:`genjax.gan.UNetGenerator`); discriminator ``[x, y] -> Conv(3)
16 -> lReLU -> Conv(3, s2) 32 -> lReLU -> Conv(1) 1`` (5x5 patches, a 4x4 logit map).

* ``generator forward``: ``G(x)`` on 64 blurred digits, jitted (the recipe's sampler).
* ``pix2pix train step``: one discriminator update (:func:`genjax.gan.pix2pix_d`) and one
  generator update (:func:`genjax.gan.pix2pix_g`, lambda = 100), Adam(1e-3, 0.5) each —
  genjax: :func:`genjax.gan.pix2pix_trainer`'s step in one ``jax.jit``; PyTorch 2 eager:
  the same two updates written the usual way (one thread; PyTorch's ``padding=1`` with
  kernel 4, stride 2 gives the sizes of flax's ``"SAME"``). The two alternate
  (:func:`genjax.bench.harness.time_paired`); the PyTorch row's ``ratio`` is the median of
  the per-pair ratios torch / genjax.
* ``PatchGAN forward``: the discriminator's logits on 64 pairs, genjax jitted vs the
  float64 NumPy oracle (:mod:`genjax.gan.oracle_pix2pix`), which has no gradients.

PyTorch is an optional peer; its row is skipped with a note when absent. ``speedup`` = the
oracle's time / genjax's.
"""

from __future__ import annotations

import numpy as np

from genjax.bench.harness import Row, time_host, time_jax, time_paired

SUITE = "pix2pix"
BATCH = 64
NOTES = (
    "pix2pix recipe's networks on 8x8 digits, batch 64: U-Net G (16-32-64) and PatchGAN D "
    "(16-32, 5x5 patches). train step = one D update + one G update (adversarial + 100 L1), "
    "Adam; PyTorch eager with one thread; ratio = torch / genjax, median of alternated "
    "pairs. PatchGAN forward: genjax jitted vs the float64 oracle; speedup = oracle / genjax."
)


def _torch_step(x_np: np.ndarray, y_np: np.ndarray):
    """PyTorch's pix2pix step (one thread) over the same networks: ``(step, version)``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)  # as genjax/bench/gan.py: a busy 2-core machine punishes more

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.d1, self.d2, self.d3 = (
                nn.Conv2d(1, 16, 4, 2, 1),
                nn.Conv2d(16, 32, 4, 2, 1),
                nn.Conv2d(32, 64, 4, 2, 1),
            )
            self.u3, self.u2, self.u1 = (
                nn.ConvTranspose2d(64, 32, 4, 2, 1),
                nn.ConvTranspose2d(64, 16, 4, 2, 1),
                nn.ConvTranspose2d(32, 1, 4, 2, 1),
            )

        def forward(self, x):
            lrelu, relu = nn.functional.leaky_relu, torch.relu
            e1 = self.d1(x)
            e2 = self.d2(lrelu(e1, 0.2))
            e3 = self.d3(lrelu(e2, 0.2))
            u = self.u3(relu(e3))
            u = self.u2(relu(torch.cat([u, e2], 1)))
            return torch.tanh(self.u1(relu(torch.cat([u, e1], 1))))

    d = nn.Sequential(
        nn.Conv2d(2, 16, 3, 1, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 1, 1),
    )
    g = UNet()
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2))))  # noqa: E731
    x, y = nchw(x_np) * 2 - 1, nchw(y_np) * 2 - 1

    def step():
        fake = g(x)
        opt_d.zero_grad()
        real_l, fake_l = d(torch.cat([x, y], 1)), d(torch.cat([x, fake.detach()], 1))
        loss_d = 0.5 * (
            bce(real_l, torch.ones_like(real_l)) + bce(fake_l, torch.zeros_like(fake_l))
        )
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        fake_l = d(torch.cat([x, fake], 1))
        loss_g = bce(fake_l, torch.ones_like(fake_l)) + 100.0 * (fake - y).abs().mean()
        loss_g.backward()
        opt_g.step()
        return loss_g.detach()

    return step, torch.__version__


def run(quick: bool = False) -> list[Row]:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from genjax import gan
    from genjax.gan import oracle_pix2pix as oracle
    from genjax.gan import pix2pix_recipes as recipe

    repeats = 5 if quick else 20
    blurred, clean = (a[:BATCH] for a in recipe.load_blurred_pairs("digits", "train", 0))
    g = gan.UNetGenerator(1, 1, channels=recipe.G_CHANNELS, rngs=nnx.Rngs(0))
    d = gan.PatchGAN(2, channels=recipe.D_CHANNELS, rngs=nnx.Rngs(1))
    x, y = 2.0 * jnp.asarray(blurred) - 1.0, 2.0 * jnp.asarray(clean) - 1.0

    forward = jax.jit(lambda g, x: g(x))  # the generator traced: new weights never recompile
    t_g = time_jax(forward, g, x, repeats=repeats)
    rows = [Row(SUITE, f"generator forward, batch {BATCH}", "genjax", t_g.compile_s, t_g.run_s, {})]

    adam = optax.adam(1e-3, b1=0.5)
    trainer = gan.pix2pix_trainer(g_optimizer=adam, d_optimizer=adam, l1_weight=100.0)
    step = jax.jit(trainer.step, donate_argnums=0)
    state = [trainer.init(g, d)]
    keys = iter(jax.random.split(jax.random.key(0), 100000))

    def genjax_step():
        state[0], info = step(state[0], (x, y), next(keys))  # a training loop's call
        return info.loss

    case = f"pix2pix train step, batch {BATCH}"
    try:
        torch_step, torch_version = _torch_step(np.asarray(blurred), np.asarray(clean))
    except ImportError as err:
        t = time_jax(genjax_step, repeats=repeats)
        rows += [
            Row(SUITE, case, "genjax", t.compile_s, t.run_s, {}),
            Row(
                SUITE,
                case,
                "pytorch (absent)",
                None,
                float("nan"),
                {"skipped": f"torch not importable ({err})"},
            ),
        ]
    else:
        paired = time_paired(
            genjax_step, torch_step, pairs=3 if quick else 5, repeats=max(repeats // 4, 1)
        )
        rows += [
            Row(SUITE, case, "genjax", paired.a.compile_s, paired.a.run_s, {}),
            Row(
                SUITE,
                case,
                f"pytorch {torch_version} (eager)",
                paired.b.compile_s,
                paired.b.run_s,
                {"ratio": paired.ratio, "pairs": paired.pairs},
            ),
        ]

    # the PatchGAN forward: genjax jitted vs the float64 oracle on the same weights and pair
    d = state[0].d  # the trained critic (the step donated the initial one's buffers)
    critic = jax.jit(lambda d, x, y: d(x, y))
    t_d = time_jax(critic, d, x, y, repeats=repeats)
    layers = [
        (np.asarray(c.kernel[...]), np.asarray(c.bias[...]), s, p)
        for c, s, p in zip(d.convs, d.strides, d.paddings, strict=True)
    ]
    x_np, y_np = np.asarray(x), np.asarray(y)
    t_o = time_host(oracle.patchgan, layers, x_np, y_np, repeats=max(repeats // 4, 3))
    dcase = f"PatchGAN forward, batch {BATCH}"
    rows += [
        Row(SUITE, dcase, "genjax", t_d.compile_s, t_d.run_s, {}),
        Row(
            SUITE,
            dcase,
            "oracle (numpy f64)",
            t_o.compile_s,
            t_o.run_s,
            {"speedup": t_o.run_s / t_d.run_s},
        ),
    ]
    return rows
