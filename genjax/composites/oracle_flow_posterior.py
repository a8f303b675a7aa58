"""NumPy float64 oracle of the flow-posterior ELBO and IWAE weights (planar and IAF).

Written from the equations, not from :mod:`genjax.composites.flow_posterior`; imports NumPy only.

    q_0(z_0|x) = N(mu(x), diag exp(logvar(x))),  z_0 = mu + exp(logvar / 2) eps
    planar (Rezende & Mohamed 2015, eqs. 10-12, App. A.1):
        m(a) = -1 + log(1 + e^a),  u_hat = u + (m(w.u) - w.u) w / |w|^2
        z' = z + u_hat tanh(w.z + b),  log|det| = log|1 + (1 - tanh^2(w.z + b)) u_hat.w|
    IAF (Kingma et al. 2016, eqs. 10-11), a masked MLP over [h, z] (Germain et al. 2015):
        input degrees 0 (context h) and order (z), hidden degrees k mod L,
        hidden mask 1[m_l(k) >= m_{l-1}(k')], output mask 1[m_0(d) > m_L(k)],
        (m_d, s_d) = outputs of z_d,  alpha_d = c tanh(s_d / c),
        z'_d = z_d exp(alpha_d) + m_d,  log|det| = sum_d alpha_d
    ELBO = log p(x|z_K) + log N(z_K; 0, I) - log q_0(z_0|x) + sum_k log|det_k|   (R&M eq. 15)
    IWAE_k = log (1/k) sum_i exp(ELBO_i)                                       (Burda et al.)

Weights come as plain arrays (:func:`weights_of` reads them off a model): MLPs as lists of
``(W (in, out), b (out,))`` with SiLU between layers (the encoder/decoder/context networks),
each MADE as its list of unmasked ``(W, b)`` with its ``order`` and activation name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _silu(a: np.ndarray) -> np.ndarray:
    return a / (1.0 + np.exp(-a))  # a sigmoid(a)


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


ACTIVATIONS = {"silu": _silu, "relu": _relu, "identity": lambda a: a}


def _mlp(
    h: np.ndarray, layers: Layers, act: str = "silu", masks: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """``h <- act(h (W * M) + b)``, the last layer affine."""
    for i, (w, b) in enumerate(layers):
        w = _f64(w) if masks is None else _f64(w) * masks[i]
        h = h @ w + _f64(b)
        if i < len(layers) - 1:
            h = ACTIVATIONS[act](h)
    return h


def _soft_cap_logvar(h: np.ndarray) -> np.ndarray:
    """The encoder's log-variance cap: h on [-30, 10], 10 + 10 tanh((h - 10)/10) above,
    -30 + 10 tanh((h + 30)/10) below."""
    return np.where(
        h > 10.0,
        10.0 + 10.0 * np.tanh((h - 10.0) / 10.0),
        np.where(h < -30.0, -30.0 + 10.0 * np.tanh((h + 30.0) / 10.0), h),
    )


def made_masks_with_context(
    context_dim: int, order: Sequence[int], hidden: Sequence[int]
) -> list[np.ndarray]:
    """Masks of a MADE over ``[h, z]`` (Germain et al. eqs. 12-13), context degree 0."""
    num_latents = len(order)
    degrees = [np.concatenate([np.zeros(context_dim), np.asarray(order, np.float64)])]
    degrees += [np.arange(w) % num_latents for w in hidden]
    masks = [
        (cur[None, :] >= prev[:, None]).astype(np.float64)
        for prev, cur in zip(degrees[:-1], degrees[1:], strict=True)
    ]
    out = np.repeat(degrees[0], 2)  # unit 2 d + p belongs to input d (p: shift, log-scale)
    masks.append((out[None, :] > degrees[-1][:, None]).astype(np.float64))
    return masks


def planar_step(
    z: np.ndarray, w: np.ndarray, u: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """z, w, u: (B, L); b: (B,) -> (z', log|det|)."""
    wu = np.sum(w * u, axis=-1)
    m = -1.0 + np.log1p(np.exp(wu))  # m(a) = -1 + softplus(a)
    u_hat = u + ((m - wu) / np.sum(w * w, axis=-1))[:, None] * w
    t = np.tanh(np.sum(w * z, axis=-1) + b)
    z_new = z + u_hat * t[:, None]
    log_det = np.log(np.abs(1.0 + (1.0 - t**2) * np.sum(u_hat * w, axis=-1)))
    return z_new, log_det


def iaf_step(
    z: np.ndarray, h: np.ndarray, made: dict, scale_clamp: float
) -> tuple[np.ndarray, np.ndarray]:
    """z: (B, L), h: (B, C); made: {"layers", "order", "activation"}."""
    c, num_latents = h.shape[1], z.shape[1]
    hidden = [np.shape(w)[1] for w, _ in made["layers"][:-1]]
    masks = made_masks_with_context(c, made["order"], hidden)
    out = _mlp(np.concatenate([h, z], axis=1), made["layers"], made["activation"], masks)
    out = out.reshape(len(z), c + num_latents, 2)[:, c:, :]  # the outputs of z's inputs
    shift, alpha = out[..., 0], scale_clamp * np.tanh(out[..., 1] / scale_clamp)
    return z * np.exp(alpha) + shift, np.sum(alpha, axis=-1)


def flow_elbo(x: np.ndarray, eps: np.ndarray, w: dict) -> dict[str, np.ndarray]:
    """Per-example one-sample ELBO of the flow posterior on the noise ``eps``.

    Args:
      x: (B, *data_shape); eps: (B, L); w: :func:`weights_of`'s dict.

    Returns:
      dict of (B,): ``elbo``, ``log_likelihood``, ``log_prior``, ``log_q0``, ``log_det``;
      and ``z`` (B, L), the posterior sample z_K.
    """
    xf = _f64(x).reshape(len(x), -1)
    eps = _f64(eps)
    num_latents = eps.shape[1]
    enc = _mlp(xf, w["encoder"])
    mu, logvar = enc[:, :num_latents], _soft_cap_logvar(enc[:, num_latents:])
    z = mu + np.exp(0.5 * logvar) * eps
    log_q0 = np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * logvar - 0.5 * eps**2, axis=-1)
    h = _mlp(xf, w["context"]) if w["context"] else np.zeros((len(xf), 0))
    log_det = np.zeros(len(xf))
    for k in range(w["num_flows"]):
        if w["flow"] == "planar":
            lam = h[:, k * (2 * num_latents + 1) : (k + 1) * (2 * num_latents + 1)]
            z, ld = planar_step(z, lam[:, :num_latents], lam[:, num_latents:-1], lam[:, -1])
        else:
            z, ld = iaf_step(z, h, w["mades"][k], w["scale_clamp"])
        log_det = log_det + ld
    out = _mlp(z, w["decoder"])
    if w["likelihood"] == "bernoulli":  # x log sigmoid(o) + (1 - x) log sigmoid(-o)
        ll = xf * -np.logaddexp(0.0, -out) + (1 - xf) * -np.logaddexp(0.0, out)
    else:
        s = float(w["log_std"])
        ll = -0.5 * np.log(2 * np.pi) - s - 0.5 * (xf - out) ** 2 * math.exp(-2 * s)
    log_lik = np.sum(ll, axis=-1)
    log_prior = np.sum(-0.5 * np.log(2 * np.pi) - 0.5 * z**2, axis=-1)
    return {
        "elbo": log_lik + log_prior - log_q0 + log_det,
        "log_likelihood": log_lik,
        "log_prior": log_prior,
        "log_q0": log_q0,
        "log_det": log_det,
        "z": z,
    }


def flow_iwae_bound(x: np.ndarray, eps: np.ndarray, w: dict) -> np.ndarray:
    """``log (1/k) sum_i w_i`` with ``log w_i`` the ELBO of ``eps[i]``: eps (k, B, L) -> (B,)."""
    log_w = np.stack([flow_elbo(x, e, w)["elbo"] for e in _f64(eps)])  # (k, B)
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def weights_of(model: Any) -> dict:
    """The arrays of a ``FlowPosteriorVAE`` as float64 NumPy (attribute reads only)."""

    def layers(net: Any) -> Layers:
        return [(_f64(lin.kernel[...]), _f64(lin.bias[...])) for lin in net.layers]

    names = {"relu": "relu", "identity": "identity", "silu": "silu"}
    mades = [
        {
            "layers": layers(m),
            "order": tuple(m.degrees[0][m.context_dim :]),
            "activation": names[m.activation.__name__],
        }
        for m in model.mades
    ]
    return {
        "encoder": layers(model.vae.encoder.net),
        "decoder": layers(model.vae.decoder.net),
        "context": layers(model.context.net) if model.context is not None else [],
        "mades": mades,
        "flow": model.flow,
        "num_flows": model.num_flows,
        "scale_clamp": model.scale_clamp,
        "likelihood": model.vae.likelihood,
        "log_std": float(np.asarray(model.vae.log_std[...])),
    }
