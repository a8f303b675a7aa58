"""Bad and extreme inputs to pix2pix's public functions (issue 18, item 4)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import gan
from genjax.gan import pix2pix_recipes
from genjax.testing import BadInput, assert_handled

ADAM = optax.adam(1e-3)
LOGITS = jnp.zeros((2, 3, 3))
IMG = jnp.zeros((2, 8, 8, 1))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


# Abstract modules (parameters as shapes, nothing computed): the checks run before any
# arithmetic, and building real modules would compile an initialiser per shape (~0.5 CPU-s).
def _tiny_d():
    return nnx.eval_shape(
        lambda: gan.PatchGAN(
            2, channels=(2,), kernel_sizes=(3, 1), strides=(1, 1), rngs=nnx.Rngs(0)
        )
    )


def _tiny_g(channels=(2,)):
    return nnx.eval_shape(lambda: gan.UNetGenerator(1, 1, channels=channels, rngs=nnx.Rngs(0)))


CASES = [
    # --- receptive field ----------------------------------------------------------------
    _case(
        "receptive_field: stride > kernel (holes in the patch)",
        lambda: gan.receptive_field((2, 3), (3, 1)),
        "strides",
    ),
    _case("receptive_field: kernel 0", lambda: gan.receptive_field((0,), (1,)), "kernel_sizes"),
    _case(
        "receptive_field: lengths differ", lambda: gan.receptive_field((3, 3), (1,)), "kernel_sizes"
    ),
    _case("receptive_field: no layers", lambda: gan.receptive_field((), ()), "kernel_sizes"),
    _case("patch_window: negative index", lambda: gan.patch_window(-1, (3,), (1,), (1,)), "index"),
    _case(
        "patch_window: negative padding", lambda: gan.patch_window(0, (3,), (1,), (-1,)), "paddings"
    ),
    _case(
        "patch_window: one padding too few",
        lambda: gan.patch_window(0, (3, 3), (1, 1), (1,)),
        "paddings",
    ),
    # --- networks -------------------------------------------------------------------------
    _case(
        "UNetGenerator: no encoder layers",
        lambda: gan.UNetGenerator(1, 1, channels=(), rngs=nnx.Rngs(0)),
        "channels",
    ),
    _case(
        "UNetGenerator: out_channels 0",
        lambda: gan.UNetGenerator(1, 0, channels=(2,), rngs=nnx.Rngs(0)),
        "out_channels",
    ),
    _case(
        "UNetGenerator: image side not divisible by 2^levels",
        lambda: _tiny_g((2, 2, 2))(jnp.zeros((1, 6, 6, 1))),
        "x",
    ),
    _case(
        "UNetGenerator: x of 3 dims",
        lambda: _tiny_g()(jnp.zeros((8, 8, 1))),
        "x",
    ),
    _case(
        "PatchGAN: one kernel size per hidden layer only (no logit layer)",
        lambda: gan.PatchGAN(2, channels=(4,), kernel_sizes=(3,), strides=(1,), rngs=nnx.Rngs(0)),
        "kernel_sizes",
    ),
    _case(
        "PatchGAN: stride above kernel",
        lambda: gan.PatchGAN(
            2, channels=(4,), kernel_sizes=(1, 1), strides=(2, 1), rngs=nnx.Rngs(0)
        ),
        "strides",
    ),
    _case(
        "PatchGAN: y of another image size", lambda: _tiny_d()(IMG, jnp.zeros((2, 4, 4, 1))), "y"
    ),
    _case(
        "PatchGAN: channels of x + y differ from in_channels",
        lambda: _tiny_d()(IMG, jnp.zeros((2, 8, 8, 2))),
        "in_channels",
    ),
    # --- losses ---------------------------------------------------------------------------
    _case(
        "pix2pix_d: real_logits (batch,) instead of (batch, h, w)",
        lambda: gan.pix2pix_d(jnp.zeros(4), LOGITS),
        "real_logits",
    ),
    _case(
        "pix2pix_d: integer fake_logits",
        lambda: gan.pix2pix_d(LOGITS, jnp.zeros((2, 3, 3), jnp.int32)),
        "fake_logits",
    ),
    _case(
        "pix2pix_g: l1_weight < 0",
        lambda: gan.pix2pix_g(LOGITS, IMG, IMG, l1_weight=-1.0),
        "l1_weight",
    ),
    _case(
        "pix2pix_g: l1_weight NaN",
        lambda: gan.pix2pix_g(LOGITS, IMG, IMG, l1_weight=jnp.nan),
        "l1_weight",
    ),
    _case(
        "l1_loss: targets of another shape",
        lambda: gan.l1_loss(IMG, jnp.zeros((2, 8, 8, 2))),
        "targets",
    ),
    # --- trainer --------------------------------------------------------------------------
    _case(
        "pix2pix_trainer: d_optimizer missing when adversarial",
        lambda: gan.pix2pix_trainer(g_optimizer=ADAM),
        "d_optimizer",
    ),
    _case(
        "pix2pix_trainer: g_optimizer not an optax transformation",
        lambda: gan.pix2pix_trainer(g_optimizer=1e-3, d_optimizer=ADAM),
        "g_optimizer",
    ),
    _case(
        "pix2pix_trainer: L1-only with l1_weight 0 (nothing to train on)",
        lambda: gan.pix2pix_trainer(g_optimizer=ADAM, l1_weight=0.0, adversarial=False),
        "l1_weight",
    ),
    _case(
        "pix2pix_trainer: init without a discriminator",
        lambda: gan.pix2pix_trainer(g_optimizer=ADAM, d_optimizer=ADAM).init(_tiny_g()),
        "d",
    ),
    _case(
        "blur_digits: sigma 0",
        lambda: pix2pix_recipes.blur_digits(np.zeros((1, 8, 8, 1)), 0.0),
        "sigma",
    ),
    # --- valid extremes -------------------------------------------------------------------
    _case(
        "pix2pix_d: logits +-1e4 (a perfect and a hopeless critic) are finite",
        lambda: (
            gan.pix2pix_d(jnp.full((1, 2, 2), 1e4), jnp.full((1, 2, 2), -1e4)),
            gan.pix2pix_d(jnp.full((1, 2, 2), -1e4), jnp.full((1, 2, 2), 1e4)),
        ),
        kind="extreme",
        check=lambda r: float(r[0]) == 0.0 and np.isclose(float(r[1]), 1e4),
    ),
    _case(
        "pix2pix_g: saturated D (logits -1e4) gives the exact 1e4",
        lambda: gan.pix2pix_g(jnp.full((1, 2, 2), -1e4), IMG[:1], IMG[:1]),
        kind="extreme",
        check=lambda v: np.isclose(float(v), 1e4, rtol=1e-6),
    ),
    _case(
        "pix2pix_g: l1_weight 0 is the adversarial term alone",
        lambda: gan.pix2pix_g(jnp.zeros((1, 2, 2)), IMG[:1], IMG[:1] + 1, l1_weight=0.0),
        kind="extreme",
        check=lambda v: np.isclose(float(v), np.log(2.0), rtol=1e-6),
    ),
    _case(
        "receptive_field: a single 1x1 layer sees one pixel",
        lambda: gan.receptive_field((1,), (1,)),
        kind="extreme",
        check=lambda n: n == 1,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
