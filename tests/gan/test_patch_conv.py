"""The patch-product convolutions against the float64 oracle and lax.

:mod:`genjax.gan.patch_conv` is an exact reformulation of ``lax.conv_general_dilated`` /
``lax.conv_transpose`` with "SAME" padding (the maps of ``nnx.Conv`` / ``nnx.ConvTranspose``):
in float64 it must match the oracle (:mod:`genjax.gan.oracle_conv`, loops from the
definitions) and lax to float64 rounding (the float64 single-op tolerance, 1e-10 relative).
Its gradients are those of the same linear map; the DCGAN networks that call it are held
to the same networks run through the flax layers' own calls in ``test_networks.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.gan import oracle_conv, patch_conv
from genjax.testing import assert_close_to_oracle

# (batch, size, C_in, C_out, kernel, stride): the DCGAN layers (k 4, s 2), an odd size (the
# "SAME" padding is then uneven), and a stride that equals the kernel.
CONV_CASES = [(2, 4, 3, 4, 4, 2), (1, 7, 2, 3, 4, 2), (1, 6, 2, 3, 3, 3)]
CONV_T_CASES = [(2, 2, 4, 3, 4, 2), (1, 3, 2, 3, 4, 2), (1, 2, 2, 3, 2, 2)]
JIT_CASES = [("conv", c) for c in CONV_CASES[:2]] + [
    ("conv_transpose", c) for c in CONV_T_CASES[:2]
]


def _lax_conv(x, w, b, s):
    dims = ("NHWC", "HWIO", "NHWC")
    return jax.lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=dims) + b.reshape(
        1, 1, 1, -1
    )


def _lax_conv_transpose(x, w, b, s):
    return jax.lax.conv_transpose(x, w, (s, s), "SAME") + b.reshape(1, 1, 1, -1)


FORMS = {  # name -> (patch form, lax form, oracle)
    "conv": (patch_conv.conv2d, _lax_conv, oracle_conv.conv2d_same),
    "conv_transpose": (
        patch_conv.conv_transpose2d,
        _lax_conv_transpose,
        oracle_conv.conv_transpose2d_same,
    ),
}


def _inputs(key, case, dtype):
    B, n, c_in, c_out, k, _ = case
    kx, kw, kb = jax.random.split(key, 3)
    return (
        jax.random.normal(kx, (B, n, n, c_in), dtype),
        jax.random.normal(kw, (k, k, c_in, c_out), dtype) / k,
        jax.random.normal(kb, (c_out,), dtype),
    )


def _oracle(form, x, w, b, s):
    return FORMS[form][2](np.asarray(x), np.asarray(w), np.asarray(b), s)


def test_patch_forms_match_oracle_and_lax_in_float64(x64, keys):
    """The DCGAN layer shapes and uneven "SAME" padding, all in one program (one compile)."""
    inputs = [
        _inputs(k, case, jnp.float64)
        for k, (_, case) in zip(keys[: len(JIT_CASES)], JIT_CASES, strict=True)
    ]
    run = jax.jit(
        lambda inputs: [
            (FORMS[form][0](*args, case[-1]), FORMS[form][1](*args, case[-1]))
            for (form, case), args in zip(JIT_CASES, inputs, strict=True)
        ]
    )
    for (form, case), args, (y, y_lax) in zip(JIT_CASES, inputs, run(inputs), strict=True):
        assert_close_to_oracle(y, _oracle(form, *args, case[-1]), err_msg=f"{form} {case}")
        assert_close_to_oracle(y, y_lax, err_msg=f"{form} {case} vs lax")


def test_patch_forms_without_jit(x64, keys):
    for form, case in (("conv", CONV_CASES[2]), ("conv_transpose", CONV_T_CASES[2])):
        x, w, b = _inputs(keys[6], case, jnp.float64)
        assert_close_to_oracle(FORMS[form][0](x, w, b, case[-1]), _oracle(form, x, w, b, case[-1]))


def test_same_padding_is_lax():
    for size, k, s in [(8, 4, 2), (7, 4, 2), (5, 3, 1), (6, 3, 3), (1, 4, 2)]:
        assert list(patch_conv.same_padding(size, k, s)) == list(
            jax.lax.padtype_to_pads((size,), (k,), (s,), "SAME")[0]
        )
