"""Bad and extreme inputs to the shared networks of ``genjax.nn`` (issue 16).

Finding 7 for the text encoder: a token id outside ``[0, vocab_size)`` (NaN embeddings or a
wrap-around) and a caption without ``<eos>`` (the pooled feature silently taken at index 0)
are rejected while the ids are concrete; labels of the conditional networks likewise.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from genjax import nn
from genjax.testing import BadInput, assert_handled

MLP = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
MADE = nn.MADE(3, (6,), 2, rngs=nnx.Rngs(0))
TEXT = nn.CharTextEncoder(6, 5, 4, width=8, depth=1, num_heads=2, eos_id=2, rngs=nnx.Rngs(0))
GOOD_TOKENS = jnp.array([[1, 3, 2, 0, 0]])
DENOISER = nn.MLPDenoiser(2, (8,), time_embed_dim=4, num_classes=3, rngs=nnx.Rngs(0))
UNET = nn.UNet(1, base_channels=8, channel_mults=(1,), attention_levels=(), num_classes=3,
               num_groups=4, rngs=nnx.Rngs(0))
MHA = nn.MultiHeadAttention(4, 2, rngs=nnx.Rngs(0))
X2 = jnp.zeros((2, 2))
IMG = jnp.zeros((2, 4, 4, 1))


def _case(name, call, argument="", kind="reject", check=None):
    return BadInput(name, call, argument, kind, check)


CASES = [
    _case("mlp.MLP: hidden size 0", lambda: nn.MLP(3, (0,), 2, rngs=nnx.Rngs(0)),
          "hidden_sizes"),
    _case("mlp.MLP: x with the wrong number of features", lambda: MLP(jnp.zeros((2, 5))), "x"),
    _case("made.MADE: in_features 0", lambda: nn.MADE(0, (4,), rngs=nnx.Rngs(0)),
          "in_features"),
    _case("made.MADE: x with the wrong number of features", lambda: MADE(jnp.zeros((2, 4))), "x"),
    _case("made.made_degrees: order not a permutation",
          lambda: nn.made_degrees(3, (4,), order=(1, 1, 2)), "order"),
    _case("attention.causal_mask: length 0", lambda: nn.causal_mask(0), "length"),
    _case("attention.dot_product_attention: k of the wrong shape",
          lambda: nn.dot_product_attention(jnp.zeros((1, 2, 1, 4)), jnp.zeros((1, 3, 1, 5)),
                                           jnp.zeros((1, 3, 1, 4))), "k"),
    _case("attention.dot_product_attention: float mask",
          lambda: nn.dot_product_attention(jnp.zeros((1, 2, 1, 4)), jnp.zeros((1, 2, 1, 4)),
                                           jnp.zeros((1, 2, 1, 4)), mask=jnp.ones((2, 2))),
          "mask"),
    _case("attention.MultiHeadAttention: num_heads does not divide in_features",
          lambda: nn.MultiHeadAttention(5, 2, rngs=nnx.Rngs(0)), "num_heads"),
    _case("attention.MultiHeadAttention: x of the wrong width",
          lambda: MHA(jnp.zeros((1, 3, 6))), "x"),
    _case("attention.TransformerBlock: dim 0",
          lambda: nn.TransformerBlock(0, 1, rngs=nnx.Rngs(0)), "dim"),
    _case("autoencoders.MLPEncoder: data_shape with a 0",
          lambda: nn.MLPEncoder((0, 2), (4,), 2, rngs=nnx.Rngs(0)), "data_shape"),
    _case("autoencoders.ConvEncoder: image_shape 2-D",
          lambda: nn.ConvEncoder((8, 8), 2, rngs=nnx.Rngs(0)), "image_shape"),
    _case("autoencoders.MLPDecoder: z of the wrong width",
          lambda: nn.MLPDecoder(2, (4,), (3,), rngs=nnx.Rngs(0))(jnp.zeros((1, 5))), "z"),
    _case("clip_encoders.CharTextEncoder: token id >= vocab_size (finding 7)",
          lambda: TEXT(jnp.array([[1, 6, 2, 0, 0]])), "tokens"),
    _case("clip_encoders.CharTextEncoder: negative token id (finding 7)",
          lambda: TEXT(jnp.array([[1, -1, 2, 0, 0]])), "tokens"),
    _case("clip_encoders.CharTextEncoder: a caption without <eos>",
          lambda: TEXT(jnp.array([[1, 3, 3, 0, 0]])), "tokens"),
    _case("clip_encoders.CharTextEncoder: float tokens",
          lambda: TEXT(GOOD_TOKENS.astype(float)), "tokens"),
    _case("clip_encoders.CharTextEncoder: longer than max_length",
          lambda: TEXT(jnp.full((1, 9), 2)), "tokens"),
    _case("clip_encoders.CharTextEncoder: eos_id >= vocab_size",
          lambda: nn.CharTextEncoder(6, 5, 4, eos_id=6, rngs=nnx.Rngs(0)), "eos_id"),
    _case("denoiser.MLPDenoiser: label > num_classes (finding 7)",
          lambda: DENOISER(X2, jnp.zeros(2), jnp.array([0, 4])), "labels"),
    _case("denoiser.MLPDenoiser: negative label (finding 7)",
          lambda: DENOISER(X2, jnp.zeros(2), jnp.array([0, -1])), "labels"),
    _case("denoiser.MLPDenoiser: labels of the wrong length",
          lambda: DENOISER(X2, jnp.zeros(2), jnp.array([0, 1, 2])), "labels"),
    _case("denoiser.MLPDenoiser: t of the wrong length",
          lambda: DENOISER(X2, jnp.zeros(3), jnp.array([0, 1])), "t"),
    _case("denoiser.MLPDenoiser: x of the wrong width",
          lambda: DENOISER(jnp.zeros((2, 3)), jnp.zeros(2), jnp.array([0, 1])), "x"),
    _case("denoiser.MLPDenoiser: odd time_embed_dim",
          lambda: nn.MLPDenoiser(2, (8,), time_embed_dim=5, rngs=nnx.Rngs(0)), "time_embed_dim"),
    _case("unet.UNet: label > num_classes (finding 7)",
          lambda: UNET(IMG, jnp.zeros(2), jnp.array([0, 7])), "labels"),
    _case("unet.UNet: t of the wrong length", lambda: UNET(IMG, jnp.zeros(3), jnp.array([0, 1])),
          "t"),
    _case("unet.UNet: labels missing", lambda: UNET(IMG, jnp.zeros(2)), "labels"),
    _case("unet.UNet: x with the wrong channels",
          lambda: UNET(jnp.zeros((2, 4, 4, 3)), jnp.zeros(2), jnp.array([0, 1])), "x"),
    _case("unet.UNet: empty channel_mults",
          lambda: nn.UNet(1, channel_mults=(), rngs=nnx.Rngs(0)), "channel_mults"),
    _case("embeddings.sinusoidal_embedding: odd dim",
          lambda: nn.sinusoidal_embedding(jnp.zeros(2), 5), "dim"),
    _case("embeddings.sinusoidal_embedding: t 2-D",
          lambda: nn.sinusoidal_embedding(jnp.zeros((2, 1)), 4), "t"),
    _case("embeddings.sinusoidal_embedding: max_period 0",
          lambda: nn.sinusoidal_embedding(jnp.zeros(2), 4, max_period=0.0), "max_period"),
    _case("embeddings.GaussianFourierFeatures: scale < 0",
          lambda: nn.GaussianFourierFeatures(4, rngs=nnx.Rngs(0), scale=-1.0), "scale"),
    # --- valid extremes -----------------------------------------------------------------
    _case("clip_encoders.CharTextEncoder: ids 0 and vocab_size - 1",
          lambda: TEXT(jnp.array([[0, 5, 2, 0, 5]])), kind="extreme"),
    _case("denoiser.MLPDenoiser: the null label num_classes",
          lambda: DENOISER(X2, jnp.zeros(2), jnp.array([3, 3])), kind="extreme"),
    _case("embeddings.sinusoidal_embedding: t = 1e6",
          lambda: nn.sinusoidal_embedding(jnp.array([1e6]), 8), kind="extreme",
          check=lambda e: bool(np.all(np.abs(np.asarray(e)) <= 1.0))),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_handled(case):
    assert_handled(case)
