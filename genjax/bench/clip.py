"""CLIP: the contrastive loss and its gradient, and text-to-digit sampling.

Workloads:

* **loss** and **loss + gradient** of CLIP's symmetric InfoNCE (:func:`genjax.contrastive.
  clip_loss`) for a batch of N = 1024 image/text pairs of dimension D = 256 (random
  correlated embeddings, logit scale 1/0.07). genjax: one jitted program (float32; the
  gradient by ``jax.value_and_grad`` with respect to both embeddings and the scale).
  Oracle: :mod:`genjax.contrastive.oracle` in float64 NumPy, the gradient by its analytic
  formula (``G = (P + Q - 2I) / 2N`` pulled back through the normalisation). PyTorch
  (when importable): the usual open_clip-style loss (``F.normalize``, two
  ``cross_entropy`` calls) with autograd, float32 on CPU.
* **text-to-digit sampling**: 100 digits from the ``text-to-digit`` recipe's model
  (randomly initialised: the cost does not depend on the weights) by DDIM with 20 steps
  and classifier-free guidance (one U-Net call per step on the doubled batch), the public
  :func:`genjax.composites.text_to_image.sample` on the CLIP text features; per image.

Run: ``python -m genjax.bench clip``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax import contrastive as c
from genjax.bench.harness import Row, time_host, time_jax
from genjax.contrastive import oracle

SUITE = "clip"
NOTES = ""


def _embeddings(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d))
    return a.astype(np.float32), (a + rng.normal(size=(n, d))).astype(np.float32)


def _torch_loss_and_grad():
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as err:
        return None, f"torch not importable ({err}); peer rows skipped"

    def loss_fn(a, b, s):
        u, v = F.normalize(a, dim=1), F.normalize(b, dim=1)
        logits = s * u @ v.T
        labels = torch.arange(a.shape[0])
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

    def value(a, b, s):
        with torch.no_grad():
            return loss_fn(a, b, s).item()

    def value_and_grad(a, b, s):
        a = a.detach().requires_grad_(True)
        b = b.detach().requires_grad_(True)
        s = s.detach().requires_grad_(True)
        loss = loss_fn(a, b, s)
        loss.backward()
        return loss.item(), a.grad, b.grad, s.grad

    return (torch, value, value_and_grad), f"torch {torch.__version__} (CPU, float32)"


def run(quick: bool = False) -> list[Row]:
    global NOTES
    n, d = (256, 64) if quick else (1024, 256)
    repeats = 2 if quick else 5
    scale = 1.0 / 0.07
    a, b = _embeddings(n, d)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    rows: list[Row] = []
    exact = oracle.clip_loss(a64, b64, scale)
    exact_grad = oracle.clip_loss_grad(a64, b64, scale)

    loss_fn = jax.jit(c.clip_loss)
    grad_fn = jax.jit(jax.value_and_grad(c.clip_loss, argnums=(0, 1, 2)))
    s32 = jnp.float32(scale)
    aj, bj = jnp.asarray(a), jnp.asarray(b)

    case = f"clip loss N={n} D={d}"
    t = time_jax(loss_fn, aj, bj, s32, repeats=repeats)
    err = abs(float(loss_fn(aj, bj, s32)) - exact) / exact
    rows.append(Row(SUITE, case, "genjax", t.compile_s, t.run_s, {"rel_err_vs_f64": err}))
    t = time_host(oracle.clip_loss, a64, b64, scale, repeats=repeats)
    rows.append(Row(SUITE, case, "oracle (numpy f64)", t.compile_s, t.run_s))

    case = f"clip loss+grad N={n} D={d}"
    t = time_jax(grad_fn, aj, bj, s32, repeats=repeats)
    _, (ga, _, _) = grad_fn(aj, bj, s32)
    gerr = float(np.max(np.abs(np.asarray(ga) - exact_grad[0])) / np.max(np.abs(exact_grad[0])))
    rows.append(Row(SUITE, case, "genjax", t.compile_s, t.run_s, {"grad_rel_err_vs_f64": gerr}))

    def oracle_value_and_grad(x, y, s):
        return oracle.clip_loss(x, y, s), oracle.clip_loss_grad(x, y, s)

    t = time_host(oracle_value_and_grad, a64, b64, scale, repeats=repeats)
    rows.append(Row(SUITE, case, "oracle (numpy f64)", t.compile_s, t.run_s,
                    {"grad": "analytic"}))

    peers, note = _torch_loss_and_grad()
    if peers is not None:
        torch, value, value_and_grad = peers
        ta, tb, ts = torch.tensor(a), torch.tensor(b), torch.tensor(scale)
        t = time_host(value, ta, tb, ts, repeats=repeats)
        rows.append(Row(SUITE, f"clip loss N={n} D={d}", "torch", t.compile_s, t.run_s))
        t = time_host(value_and_grad, ta, tb, ts, repeats=repeats)
        rows.append(Row(SUITE, f"clip loss+grad N={n} D={d}", "torch", t.compile_s, t.run_s))

    rows.extend(_sampling_rows(quick))
    NOTES = (
        "CLIP loss: float32 genjax vs the float64 NumPy oracle (gradient: analytic formula). "
        f"{note}. text-to-digit: randomly initialised recipe model, DDIM 20 steps, CFG "
        "scale 3 (one U-Net call on the doubled batch per step); per_image = run / batch."
    )
    return rows


def _sampling_rows(quick: bool) -> list[Row]:
    from genjax.composites import recipes, text_to_image
    from genjax.contrastive import captions

    n = 20 if quick else 100
    params = recipes.t2d_init(jax.random.key(0), None)
    prompts = [captions.caption(i % 10, "a handwritten {word}") for i in range(n)]
    tokens = jnp.asarray(captions.tokenize(prompts))
    context = text_to_image.text_context(params["clip"], tokens)  # (n, L, W)
    null = text_to_image.text_context(params["clip"], jnp.asarray(recipes.NULL_TOKENS)[None])
    steps = 20

    def draw(key, unet, context, scale):
        return text_to_image.sample(key, unet, context, null, (8, 8, 1), recipes.T2D_SCHEDULE,
                                    num_steps=steps, guidance_scale=scale)

    t = time_jax(draw, jax.random.key(1), params["unet"], context, jnp.float32(3.0),
                 repeats=2 if quick else 5)
    per_image_ms = 1e3 * t.run_s / n
    assert math.isfinite(per_image_ms)
    return [Row(SUITE, f"text-to-digit ddim-20 cfg batch={n}", "genjax", t.compile_s, t.run_s,
                {"per_image_ms": per_image_ms})]
