"""pix2pix: PatchGAN receptive field by Jacobian support, oracle equivalence of the losses
and the PatchGAN forward, the U-Net's skips, the trainer's step, and the paired data."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.gan import oracle_pix2pix as oracle
from genjax.gan import pix2pix_recipes
from genjax.gan.pix2pix import PatchGAN, UNetGenerator

# float32 network and loss against the float64 oracle: a handful of float32 roundings of
# O(1) values per term, so 1e-5 relative (about 100 ulp) with an absolute floor for terms
# near 0.
RTOL, ATOL = 1e-5, 1e-6

# Building a flax module eagerly compiles one small program per distinct parameter shape
# (about 0.5 CPU-s each), so the tests share the recipe's two networks (whose shapes the
# recipe test then finds compiled) and add as few new shapes as they can.
G = UNetGenerator(1, 1, channels=pix2pix_recipes.G_CHANNELS, rngs=nnx.Rngs(0))
D = PatchGAN(2, channels=pix2pix_recipes.D_CHANNELS, rngs=nnx.Rngs(1))

# (kernels, strides, image side): the recipe's 8x8 default (5x5 patches on a 4x4 grid),
# and a pix2pix-like stack with a 4x4 stride-2 first layer on 16x16 (8x8 patches)
PATCHGANS = [((3, 3, 1), (1, 2, 1), 8), ((4, 3, 1), (2, 1, 1), 16)]


def _window_mask(d, i, j, side):
    (a, b), (c, e) = (gan.patch_window(n, d.kernel_sizes, d.strides, d.paddings) for n in (i, j))
    mask = np.zeros((side, side), bool)
    mask[max(a, 0) : b, max(c, 0) : e] = True  # the window intersected with the image
    return mask


@pytest.mark.parametrize("config", PATCHGANS, ids=["8x8 default", "16x16 k4"])
def test_patchgan_receptive_field_is_its_patch_by_jacobian_support(config):
    # under jit only: an op-by-op jacrev costs seconds for no extra coverage (the eager
    # forward is held to the oracle below)
    kernels, strides, side = config
    c_in = 2
    d = (
        D
        if kernels == D.kernel_sizes
        else PatchGAN(
            c_in,
            channels=pix2pix_recipes.D_CHANNELS,
            kernel_sizes=kernels,
            strides=strides,
            rngs=nnx.Rngs(2),
        )
    )
    assert d.patch_size == gan.receptive_field(kernels, strides)
    xy = jax.random.normal(jax.random.key(1), (1, side, side, c_in))  # the pair [x, y]

    def logits(v):  # one image's logit map (h, w) as a function of the pair
        return d(v[..., :1], v[..., 1:])[0]

    jac = jax.jit(jax.jacrev(logits))(xy)  # (h, w, 1, S, S, C)
    h, w = jac.shape[:2]
    assert h >= 2 and w >= 2
    widths = set()
    for i in range(h):
        for j in range(w):
            support = np.any(np.asarray(jac[i, j]) != 0, axis=(0, 3))  # (S, S), any channel
            np.testing.assert_array_equal(support, _window_mask(d, i, j, side))
            # every channel of both images is seen inside the window (x and y are judged)
            inside = np.asarray(jac[i, j, 0])[support]  # (pixels, C)
            assert np.all(np.any(inside != 0, axis=0))
            rows = np.flatnonzero(support.any(axis=1))
            if 0 < rows[0] and rows[-1] < side - 1:  # a window that meets no border
                widths.add(rows[-1] - rows[0] + 1)
    assert widths == {d.patch_size}  # interior windows are exactly N x N


@pytest.mark.parametrize(
    "kernels, strides, paddings",
    [
        ((3, 3, 1), (1, 2, 1), (1, 1, 0)),
        ((4, 4, 4, 4, 4), (2, 2, 2, 1, 1), (1, 1, 1, 1, 1)),  # pix2pix's 70x70 PatchGAN
        ((5, 3, 2, 3), (2, 2, 1, 3), (2, 0, 1, 1)),
        ((1,), (1,), (0,)),
    ],
)
def test_window_formula_matches_brute_force_support(kernels, strides, paddings):
    n = gan.receptive_field(kernels, strides)
    if kernels[0] == 4:
        assert n == 70  # the paper's number (Isola et al. 2017, sec. 4.4)
    size = 400
    for index in range(6):
        start, stop = gan.patch_window(index, kernels, strides, paddings)
        assert stop - start == n
        want = oracle.patch_support(index, kernels, strides, paddings, size)
        got = np.zeros(size, bool)
        got[max(start, 0) : stop] = True
        np.testing.assert_array_equal(got, want)


def _oracle_layers(d):
    return [
        (np.asarray(c.kernel[...]), np.asarray(c.bias[...]), s, p)
        for c, s, p in zip(d.convs, d.strides, d.paddings, strict=True)
    ]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_patchgan_forward_matches_oracle(jit):
    kx, ky = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (2, 8, 8, 1))
    y = jax.random.normal(ky, (2, 8, 8, 1))
    call = jax.jit(lambda d, x, y: d(x, y)) if jit else (lambda d, x, y: d(x, y))
    got = np.asarray(call(D, x, y))
    want = oracle.patchgan(_oracle_layers(D), x, y)
    assert got.shape == want.shape == (2, 4, 4)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_losses_match_oracle(jit):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(0, 3, (3, 4, 4)), rng.normal(0, 3, (2, 4, 4))
    out, tgt = rng.uniform(-1, 1, (2, 8, 8, 1)), rng.uniform(-1, 1, (2, 8, 8, 1))
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    wrap = jax.jit if jit else (lambda f: f)
    d = wrap(gan.pix2pix_d)(f32(real), f32(fake))
    g = wrap(lambda f, o, t: gan.pix2pix_g(f, o, t, l1_weight=7.0))(
        f32(fake[:2]), f32(out), f32(tgt)
    )
    l1 = wrap(gan.l1_loss)(f32(out), f32(tgt))
    np.testing.assert_allclose(d, oracle.pix2pix_d(real, fake), rtol=RTOL)
    np.testing.assert_allclose(g, oracle.pix2pix_g(fake[:2], out, tgt, 7.0), rtol=RTOL)
    np.testing.assert_allclose(l1, oracle.l1_loss(out, tgt), rtol=RTOL)
    # the direction of the game: D's loss falls when it scores real high and fake low
    assert float(gan.pix2pix_d(f32(real) + 5, f32(fake) - 5)) < float(d)
    assert float(gan.pix2pix_g(f32(fake) + 5, f32(tgt[:2]), f32(tgt[:2]))) < float(
        gan.pix2pix_g(f32(fake), f32(tgt[:2]), f32(tgt[:2]))
    )


def test_losses_at_saturated_logits_are_finite_and_exact():
    big = jnp.full((1, 2, 2), 1e4)
    assert float(gan.pix2pix_d(big, -big)) == 0.0  # D right everywhere: log 1 = 0
    np.testing.assert_allclose(gan.pix2pix_d(-big, big), oracle.pix2pix_d(-1e4, 1e4), rtol=1e-6)
    np.testing.assert_allclose(float(gan.pix2pix_d(-big, big)), 1e4, rtol=1e-6)


def test_unet_generator_skips_carry_the_input_past_the_bottleneck():
    g = jax.tree.map(jnp.copy, G)  # a copy: the weights are edited below
    x = jax.random.normal(jax.random.key(0), (1, 8, 8, 1))
    assert g(x).shape == (1, 8, 8, 1)
    pixel_jacobian = jax.jit(lambda g, v: jax.jacrev(lambda u: g(u)[0, 3, 4, 0])(v))
    assert np.all(np.asarray(pixel_jacobian(g, x)) != 0)  # the 1x1 bottleneck sees it all
    g.down[-1].kernel[...] = jnp.zeros_like(g.down[-1].kernel[...])  # cut the bottleneck
    g.down[-1].bias[...] = jnp.zeros_like(g.down[-1].bias[...])
    # the bottleneck now outputs 0 whatever the input: an encoder-decoder without skips
    # would have a zero Jacobian; the U-Net's skips still carry the input to the output
    assert np.count_nonzero(np.asarray(pixel_jacobian(g, x))) > 32


def test_trainer_step_is_the_two_updates_of_the_paper():
    g, d = G, D
    kx, ky = jax.random.split(jax.random.key(5))
    x, y = jax.random.uniform(kx, (3, 8, 8, 1)) * 2 - 1, jax.random.uniform(ky, (3, 8, 8, 1))
    lr, lam = 0.05, 3.0
    trainer = gan.pix2pix_trainer(
        g_optimizer=optax.sgd(lr), d_optimizer=optax.sgd(lr), l1_weight=lam
    )
    l1_only = gan.pix2pix_trainer(g_optimizer=optax.sgd(lr), l1_weight=lam, adversarial=False)

    @jax.jit  # one program for the four computations: each compile of a U-Net costs seconds
    def run(g, d):
        state, info = trainer.step(trainer.init(g, d), (x, y), jax.random.key(0))
        base, base_info = l1_only.step(l1_only.init(g), (x, y), jax.random.key(0))
        # by hand: D's SGD step on pix2pix_d with G fixed, then G's against the new D
        fake = g(x)
        d_loss, d_grad = jax.value_and_grad(lambda m: gan.pix2pix_d(m(x, y), m(x, fake)))(d)
        d_new = jax.tree.map(lambda p, q: p - lr * q, d, d_grad)
        g_loss, g_grad = jax.value_and_grad(
            lambda m: gan.pix2pix_g(d_new(x, m(x)), m(x), y, l1_weight=lam)
        )(g)
        g_new = jax.tree.map(lambda p, q: p - lr * q, g, g_grad)
        # the L1-only trainer ignores D: its step is SGD on lambda L1
        l1_grad = jax.grad(lambda m: lam * gan.l1_loss(m(x), y))(g)
        base_new = jax.tree.map(lambda p, q: p - lr * q, g, l1_grad)
        return (state, info, d_loss, g_loss, d_new, g_new), (base, base_info, base_new)

    (state, info, d_loss, g_loss, d_new, g_new), (base, base_info, base_new) = run(g, d)
    np.testing.assert_allclose(info.d_loss, d_loss, rtol=1e-5)
    np.testing.assert_allclose(info.loss, g_loss, rtol=1e-5)
    for a, b in zip(
        jax.tree.leaves((state.d, state.g)), jax.tree.leaves((d_new, g_new)), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert base.d is None and base_info.d_loss is None
    for a, b in zip(jax.tree.leaves(base.g), jax.tree.leaves(base_new), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # the adversarial term moved G: the two generators differ after one step
    assert (
        max(
            float(jnp.abs(a - b).max())
            for a, b in zip(jax.tree.leaves(state.g), jax.tree.leaves(base.g), strict=True)
        )
        > 1e-6
    )


def test_blur_is_the_normalised_gaussian_and_pairs_share_the_digit():
    impulse = np.zeros((1, 8, 8, 1))
    impulse[0, 4, 3, 0] = 1.0
    k = np.exp(-(np.arange(-2, 3) ** 2) / (2 * 1.3**2))
    k /= k.sum()
    want = np.zeros((8, 8))
    want[2:7, 1:6] = np.outer(k, k)  # the impulse response, centred on the pixel
    np.testing.assert_allclose(
        pix2pix_recipes.blur_digits(impulse, 1.3)[0, :, :, 0], want, rtol=1e-6, atol=1e-8
    )
    blurred, clean = pix2pix_recipes.load_blurred_pairs("digits", "test", 0)
    assert blurred.shape == clean.shape and clean.shape[1:] == (8, 8, 1)
    np.testing.assert_allclose(
        blurred[:5], pix2pix_recipes.blur_digits(clean[:5], pix2pix_recipes.BLUR_SIGMA), rtol=1e-6
    )
    assert np.abs(blurred - clean).mean() > 0.05  # the task is not the identity


def test_recipe_trains_and_reports_against_both_baselines(tmp_path):
    from genjax import registry, train

    recipe = registry.get("pix2pix")
    assert recipe.family == "gan"
    train_xy = tuple(a[:32] for a in pix2pix_recipes.load_blurred_pairs("digits", "train", 0))
    test_xy = tuple(a[:24] for a in pix2pix_recipes.load_blurred_pairs("digits", "test", 0))
    res = train.fit(
        recipe,
        train_xy,
        key=jax.random.key(0),
        out_dir=tmp_path,
        steps=2,
        batch_size=8,
        progress=False,
        test_data=test_xy,
    )
    last = res.history[-1]
    assert all(np.isfinite(last[k]) for k in ("loss", "l1", "g_adv", "d_loss", "l1_only"))
    assert (tmp_path / "samples.png").stat().st_size > 0
    s = res.summary
    x, y = test_xy
    np.testing.assert_allclose(s["test_l1_identity"], np.abs(x - y).mean(), rtol=1e-5)
    assert 0.0 < s["test_l1_pix2pix"] < 1.0 and 0.0 < s["test_l1_l1_only"] < 1.0
    # the two generators start equal and differ by the adversarial term only (after two
    # Adam steps of nearly equal sign the difference is ~1e-5, below the L1's rounding)
    pairs = zip(
        jax.tree.leaves(res.params["pix2pix"].g),
        jax.tree.leaves(res.params["l1_only"].g),
        strict=True,
    )
    assert max(float(jnp.abs(a - b).max()) for a, b in pairs) > 0.0
    assert s["sharpness_ratio_identity"] < 1.0  # blurring removes edges
    out = recipe.sample(jax.random.key(1), res.params, 3)
    assert out.shape == (3, 8, 8, 1) and bool(jnp.all((out >= 0) & (out <= 1)))
