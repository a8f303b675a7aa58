"""``fit``, checkpoints and sampling on 8 devices against the same on 1.

* a short run laid over 8 devices ends at the parameters of the 1-device run (a gradient
  recipe) and EM on 8 devices equals EM on 1 (the mixture's full-batch step on 1001 points:
  XLA pads the 8th device's share and leaves the padding out of the statistics);
* a checkpoint written on 8 devices resumes on 1 and one written on 1 resumes on 8, ending
  where the uninterrupted run ends; and a separate process that sees a single device
  (no ``XLA_FLAGS``) reads the 8-device checkpoint back bit for bit;
* sampling fills every device and gives the samples of one device;
* a batch size that does not divide over the devices is refused by name.

Tolerances: see ``test_sharded_step.py``; here the reordered float32 sums compound over a
few steps (EM's fixed point contracts them, plain SGD on a quadratic does too), so 1e-5
relative holds with room.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import registry, sharding, train
from tests.shared.test_train import _data, _recipe

ROOT = Path(__file__).resolve().parents[2]


def _fit(recipe, data, out, **kw):
    return train.fit(recipe, data, key=jax.random.key(1), out_dir=out, progress=False,
                     report=False, **kw)


def test_a_short_run_on_8_devices_ends_where_the_1_device_run_ends(tmp_path):
    recipe = _recipe()
    eight = _fit(recipe, _data(), tmp_path / "8", devices=8)
    one = _fit(recipe, _data(), tmp_path / "1", devices=1)
    np.testing.assert_allclose(eight.params["mu"], one.params["mu"], rtol=1e-5, atol=1e-6)
    # It trained (40 SGD steps from 0 to the mean), and the run says where it ran.
    np.testing.assert_allclose(one.params["mu"], [1.5, -2.0], atol=0.1)
    assert json.loads((tmp_path / "8" / "config.json").read_text())["devices"] == 8
    losses8 = [r["loss"] for r in eight.history]
    losses1 = [r["loss"] for r in one.history]
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)


@pytest.fixture(scope="module")
def gmm_runs(tmp_path_factory):
    """EM (the gmm recipe's own step) for 5 iterations on 1001 ring points, 8 vs 1 devices."""
    from genjax import data as data_lib

    recipe = registry.get("gmm")
    x = data_lib.load("ring", split="train")[:1001]  # 1001 = 7 * 11 * 13: not a multiple of 8
    root = tmp_path_factory.mktemp("gmm")
    return x, {d: _fit(recipe, x, root / str(d), steps=5, devices=d) for d in (8, 1)}


def test_em_on_8_devices_equals_em_on_1(gmm_runs):
    x, runs = gmm_runs
    for field in ("weights", "means", "covs"):
        a = np.asarray(getattr(runs[8].params, field))
        b = np.asarray(getattr(runs[1].params, field))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=field)
    ll8 = [r["log_likelihood"] for r in runs[8].history]
    ll1 = [r["log_likelihood"] for r in runs[1].history]
    np.testing.assert_allclose(ll8, ll1, rtol=1e-6)
    # The 1-device run has no padding, so the equality above says that the 7 rows XLA pads
    # onto the 8th device (1001 -> 8 * 126) stay out of N_k and the other sums. EM's
    # log-likelihood never decreases (up to float32 rounding), and the weights sum to one.
    assert np.all(np.diff(ll8) >= -1e-6 * np.abs(ll8[:-1])), ll8
    np.testing.assert_allclose(np.sum(runs[8].params.weights), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(ll8)) and -4.0 < ll8[-1] < -1.0  # the ring: about -2.4 nats


def test_em_statistics_are_summed_across_the_data_axis():
    recipe = registry.get("gmm")
    from genjax import data as data_lib

    x = jnp.asarray(data_lib.load("ring", split="train")[:1001])
    mesh = sharding.make_mesh(8)
    state = sharding.put_replicated(train.init_state(recipe, jax.random.key(0), x, 5), mesh)
    step = train.make_step(recipe, jax.random.key(1), num_examples=1001, batch_size=1001,
                           total_steps=5, mesh=mesh)
    hlo = step.lower(state, sharding.put_replicated(x, mesh)).compile().as_text()
    counts = sharding.count_collectives(hlo)
    # N_k, sum gamma x, sum gamma x x^T and the log-likelihood: local sums, then all-reduce;
    # the 1001 points themselves never travel.
    assert counts["all-reduce"] >= 1 and counts["all-gather"] == 0, counts
    assert "f32[126," in hlo  # each device holds ceil(1001 / 8) = 126 rows of the data


def test_checkpoints_move_between_device_counts(tmp_path):
    recipe = _recipe(checkpoint_every=10)
    full = _fit(recipe, _data(), tmp_path / "full", devices=8)

    for first, then in ((8, 1), (1, 8)):
        out = tmp_path / f"{first}-{then}"
        _fit(recipe, _data(), out, steps=20, devices=first)  # checkpoint at step 20
        resumed = _fit(recipe, _data(), out, resume=True, devices=then)
        # Steps 21..40 ran on the other device count: equal up to reduction order.
        np.testing.assert_allclose(resumed.params["mu"], full.params["mu"], rtol=1e-5,
                                   atol=1e-6)
        assert [r["step"] for r in resumed.history][-1] == 40

    # A process that sees one device reads the 8-device checkpoint exactly.
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import jax, numpy as np
        from genjax import train
        from tests.shared.test_train import _recipe, _data
        assert jax.device_count() == 1, jax.device_count()
        p = train.load_params(_recipe(), {str(tmp_path / "full")!r}, jax.random.key(1), _data())
        print(repr(np.asarray(p["mu"]).tolist()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", script], env={**env, "JAX_PLATFORMS": "cpu"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    restored = np.array(eval(out.stdout.strip().splitlines()[-1]), np.float32)
    np.testing.assert_array_equal(restored, np.asarray(full.params["mu"]))


def test_sampling_fills_every_device_and_matches_one_device():
    recipe = registry.get("gmm")
    from genjax.mixture import GMMParams

    params = GMMParams(
        weights=jnp.array([0.3, 0.7]), means=jnp.array([[0.0, 0.0], [3.0, -1.0]]),
        covs=jnp.stack([jnp.eye(2), 0.5 * jnp.eye(2)]),
    )
    key = jax.random.key(5)
    one = sharding.sample(recipe.sample, key, params, 100, mesh=sharding.make_mesh(1))
    eight = sharding.sample(recipe.sample, key, params, 100, mesh=sharding.make_mesh(8))
    assert one.shape == eight.shape == (100, 2)
    # The same draws: row i's random bits depend on (key, i) only, not on the layout.
    np.testing.assert_allclose(np.asarray(eight), np.asarray(one), rtol=1e-6, atol=1e-6)
    program, n_pad = sharding.sampling_program(recipe.sample, key, params, 100,
                                               mesh=sharding.make_mesh(8))
    assert n_pad == 104  # rounded up to a multiple of 8, trimmed after
    mesh = sharding.make_mesh(8)
    out = program(sharding.put_replicated(key, mesh), sharding.put_replicated(params, mesh))
    assert len(out.sharding.device_set) == 8 and not out.sharding.is_fully_replicated
    assert {s.data.shape for s in out.addressable_shards} == {(13, 2)}
    hlo = program.lower(key, params).compile().as_text()
    assert sharding.count_collectives(hlo)["all-gather"] == 0


def test_text_samplers_run_unsharded():
    # A sampler that returns Python strings cannot be traced: it runs as it is.
    def texts(key, params, n):
        del key, params
        return ["ab"] * n

    assert sharding.sample(texts, jax.random.key(0), {}, 3, mesh=sharding.make_mesh(8)) == [
        "ab", "ab", "ab"]


def test_batch_size_that_does_not_divide_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"batch_size 12 does not divide over 8 devices"):
        _fit(_recipe(batch_size=12), _data(), tmp_path, devices=8)
    # Fewer devices take it: 12 = 4 * 3.
    _fit(_recipe(batch_size=12, steps=2), _data(), tmp_path / "4", devices=4)
