"""The trainer: it learns, it logs, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from genjax import sharding, train
from genjax.nn import MLP
from genjax.recipe import Recipe

TRUE_MEAN = np.array([1.5, -2.0], np.float32)


def _data(n: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (TRUE_MEAN + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


def _mean_loss(params, batch, key):
    # A noisy quadratic: the key must matter, or resume could not catch a key mix-up.
    jitter = 1e-3 * jax.random.normal(key, (2,))
    err = batch - (params["mu"] + jitter)[None, :]  # (batch, 2)
    loss = jnp.mean(jnp.sum(err**2, axis=-1))
    return loss, {"mse": loss}


def _report(key, params, train_data, test_data, out_dir):
    del key, train_data
    err = float(jnp.linalg.norm(params["mu"] - jnp.mean(test_data, axis=0)))
    (Path(out_dir) / "samples.png").write_bytes(b"\x89PNG")  # the trainer does not draw
    return {"mean_error": err}


def _recipe(**overrides) -> Recipe:
    fields = dict(
        name="mean",
        family="test",
        summary="fit a mean by gradient descent",
        data="unused",
        init=lambda key, data: {"mu": jnp.zeros(2)},
        loss=_mean_loss,
        sample=lambda key, params, n: params["mu"][None, :] + jax.random.normal(key, (n, 2)),
        report=_report,
        steps=40,
        batch_size=16,
        # Plain SGD at 0.25 contracts the error by 1 - 2 * 0.25 = 0.5 a step: 40 steps converge.
        optimizer=lambda total_steps: optax.sgd(0.25),
        checkpoint_every=10,
    )
    fields.update(overrides)
    return Recipe(**fields)


def test_fit_learns_and_writes_the_run(tmp_path):
    result = train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path, progress=False)
    # Converged up to the noise of a 16-point batch mean (0.1 / 4 = 0.025 per coordinate).
    np.testing.assert_allclose(result.params["mu"], TRUE_MEAN, atol=0.1)
    assert result.summary["mean_error"] < 0.1
    for name in ("config.json", "metrics.jsonl", "summary.json", "samples.png"):
        assert (tmp_path / name).exists(), name
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 40
    assert rows[-1]["loss"] < rows[0]["loss"] / 10
    assert json.loads((tmp_path / "config.json").read_text())["recipe"] == "mean"


def test_same_key_same_run_and_different_key_differs(tmp_path):
    a = train.fit(_recipe(), _data(), key=jax.random.key(3), out_dir=tmp_path / "a",
                  progress=False, report=False)
    b = train.fit(_recipe(), _data(), key=jax.random.key(3), out_dir=tmp_path / "b",
                  progress=False, report=False)
    c = train.fit(_recipe(), _data(), key=jax.random.key(4), out_dir=tmp_path / "c",
                  progress=False, report=False)
    np.testing.assert_array_equal(a.params["mu"], b.params["mu"])
    assert not np.array_equal(a.params["mu"], c.params["mu"])


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path, ema):
    recipe = _recipe(ema_decay=ema)
    full = train.fit(recipe, _data(), key=jax.random.key(1), out_dir=tmp_path / "full",
                     progress=False, report=False)

    def interrupt(step: int) -> None:
        if step == 13:  # between checkpoints (10 and 20): Ctrl-C must save step 13 itself
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(recipe, _data(), key=jax.random.key(1), out_dir=tmp_path / "cut",
                  progress=False, report=False, on_step=interrupt)
    resumed = train.fit(recipe, _data(), key=jax.random.key(1), out_dir=tmp_path / "cut",
                        progress=False, report=False, resume=True)
    # Bit-for-bit: the same compiled step on the same keys and batches.
    np.testing.assert_array_equal(resumed.params["mu"], full.params["mu"])
    steps = [r["step"] for r in resumed.history]
    assert steps == sorted(set(steps)) and steps[-1] == 40


def test_ema_lags_the_parameters(tmp_path):
    plain = train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path / "p",
                      progress=False, report=False, steps=5)
    ema = train.fit(_recipe(ema_decay=0.9), _data(), key=jax.random.key(0),
                    out_dir=tmp_path / "e", progress=False, report=False, steps=5)
    # From 0 the EMA trails the raw iterates: after 5 steps it holds ~ 1 - 0.9**5 = 41% of them.
    assert np.all(np.abs(ema.params["mu"]) < np.abs(plain.params["mu"]))
    assert np.all(np.abs(ema.params["mu"]) > 0)


def test_custom_step_full_batch(tmp_path):
    def step(params, batch, key):
        del key
        # The closed-form fit: one step lands on the full-data mean.
        return {"mu": jnp.mean(batch, axis=0)}, {"n": jnp.float32(batch.shape[0])}

    recipe = _recipe(loss=None, step=step, full_batch=True, steps=1)
    result = train.fit(recipe, _data(), key=jax.random.key(0), out_dir=tmp_path, progress=False)
    np.testing.assert_allclose(result.params["mu"], _data().mean(0), rtol=1e-6)
    assert result.history[-1]["n"] == 64


def test_load_params_restores_the_final_parameters(tmp_path):
    result = train.fit(_recipe(), _data(), key=jax.random.key(2), out_dir=tmp_path,
                       progress=False, report=False)
    (tmp_path / "config.json").write_text(json.dumps({"steps": 40, "recipe": "mean"}))
    params = train.load_params(_recipe(), tmp_path, jax.random.key(2), _data())
    np.testing.assert_array_equal(params["mu"], result.params["mu"])


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path, steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(_recipe(), _data(8), key=jax.random.key(0), out_dir=tmp_path, batch_size=9)
    with pytest.raises(ValueError, match="leading example axis"):
        train.fit(_recipe(), (np.zeros((4, 2)), np.zeros(5)), key=jax.random.key(0),
                  out_dir=tmp_path)
    with pytest.raises(ValueError, match="resume"):
        train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path / "none",
                  resume=True)
    with pytest.raises(ValueError, match="exactly one of loss and step"):
        _recipe(step=lambda p, b, k: (p, {}))


def test_batch_sizes_that_do_not_divide_over_the_devices_are_refused(tmp_path):
    # One device here: a stand-in mesh of 8 checks the message; tests/multidevice runs it
    # for real on 8 devices.
    eight = types.SimpleNamespace(size=8)
    with pytest.raises(ValueError, match=r"batch_size 12 does not divide over 8 devices"):
        sharding.check_batch_size(12, eight)
    sharding.check_batch_size(16, eight)
    with pytest.raises(ValueError, match=r"devices must be in \[1, 1\].*got 2"):
        train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path, devices=2)
    with pytest.raises(ValueError, match="devices must be in"):
        sharding.make_mesh(0)
    mesh = sharding.make_mesh()
    assert mesh.axis_names == ("data",) and mesh.size == jax.device_count()


def test_one_device_is_a_mesh_of_one(tmp_path):
    result = train.fit(_recipe(), _data(), key=jax.random.key(0), out_dir=tmp_path,
                       progress=False, report=False, steps=2, devices=1)
    assert json.loads((tmp_path / "config.json").read_text())["devices"] == 1
    assert len(result.params["mu"].sharding.device_set) == 1
    hlo = train.make_step(_recipe(), jax.random.key(0), num_examples=64, batch_size=16,
                          total_steps=2).lower(
        sharding.put_replicated(train.init_state(_recipe(), jax.random.key(0), _data(), 2),
                                sharding.make_mesh(1)),
        sharding.put_replicated(jnp.asarray(_data()), sharding.make_mesh(1)),
    ).compile().as_text()
    assert sum(sharding.count_collectives(hlo).values()) == 0


def test_ema_of_a_custom_step_keeps_integer_leaves_exact(tmp_path):
    def step(params, batch, key):
        del key
        mu = params["mu"] + 0.5 * (jnp.mean(batch, axis=0) - params["mu"])
        return {"mu": mu, "count": params["count"] + 1}, {}

    recipe = _recipe(
        loss=None, step=step, full_batch=True, steps=6, ema_decay=0.5,
        init=lambda key, data: {"mu": jnp.zeros(2), "count": jnp.zeros((), jnp.int32)},
    )
    result = train.fit(recipe, _data(), key=jax.random.key(0), out_dir=tmp_path,
                       progress=False, report=False)
    # The counter is copied, not averaged: it keeps its dtype and its exact value.
    assert result.params["count"].dtype == jnp.int32
    assert int(result.params["count"]) == 6
    # The mean is averaged: it trails the raw iterate, which is 1 - 0.5**6 of the way there.
    raw = (1 - 0.5**6) * _data().mean(0)
    assert np.all(np.abs(result.params["mu"]) < np.abs(raw))
    assert np.all(np.abs(result.params["mu"]) > 0.5 * np.abs(raw))


# --- a model that is an nnx.Module, passed whole ------------------------------------------


def _module_init(kind: str):
    def init(key, data):
        del data
        net = MLP(2, [4], 2, rngs=nnx.Rngs(key))  # the model: a pytree of its weights
        return net if kind == "module" else {"net": net, "shift": jnp.zeros(2)}

    return init


def _module_loss(model, batch, key):
    # loss(model, batch, key) -> (loss, metrics): the module predicts the data mean from a
    # constant input; the key jitters the target so that resume must replay the keys.
    net, shift = (model, 0.0) if isinstance(model, MLP) else (model["net"], model["shift"])
    pred = net(jnp.ones((1, 2)))[0] + shift + 1e-3 * jax.random.normal(key, (2,))  # (2,)
    loss = jnp.mean(jnp.sum((batch - pred[None, :]) ** 2, axis=-1))
    return loss, {"mse": loss}


@pytest.mark.parametrize("kind", ["module", "dict"])
def test_a_module_model_trains_averages_checkpoints_and_resumes_exactly(tmp_path, kind):
    recipe = _recipe(init=_module_init(kind), loss=_module_loss, ema_decay=0.9, steps=20,
                     report=lambda key, params, train_data, test_data, out_dir: {},
                     optimizer=lambda total_steps: optax.sgd(0.05))
    full = train.fit(recipe, _data(), key=jax.random.key(5), out_dir=tmp_path / "full",
                     progress=False, report=False)
    net = full.params if kind == "module" else full.params["net"]
    assert isinstance(net, MLP)  # the EMA model comes back as a module, ready to call
    assert full.history[-1]["loss"] < full.history[0]["loss"] / 2

    def interrupt(step: int) -> None:
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(recipe, _data(), key=jax.random.key(5), out_dir=tmp_path / "cut",
                  progress=False, report=False, on_step=interrupt)
    resumed = train.fit(recipe, _data(), key=jax.random.key(5), out_dir=tmp_path / "cut",
                        progress=False, report=False, resume=True)
    assert jax.tree.structure(resumed.params) == jax.tree.structure(full.params)
    # Bit-for-bit, leaf by leaf: the checkpoint's flat leaves restore the module exactly.
    jax.tree.map(np.testing.assert_array_equal, resumed.params, full.params)
    loaded = train.load_params(recipe, tmp_path / "cut", jax.random.key(5), _data())
    jax.tree.map(np.testing.assert_array_equal, loaded, full.params)


def test_a_loss_model_with_integer_leaves_is_refused(tmp_path):
    recipe = _recipe(init=lambda key, data: {"mu": jnp.zeros(2), "n": jnp.zeros((), jnp.int32)})
    with pytest.raises(ValueError, match=r"non-floating leaf \['n'\]"):
        train.fit(recipe, _data(), key=jax.random.key(0), out_dir=tmp_path, progress=False)
