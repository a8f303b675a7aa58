"""Data parallelism over devices and hosts with ``jax.sharding``: the mesh, the layouts, sampling.

genjax runs one program on every device count. The devices form a one-axis
:class:`jax.sharding.Mesh` named ``"data"``; a batch is laid over that axis
(``NamedSharding(mesh, P("data"))``: device ``i`` holds rows ``i*b/d ... (i+1)*b/d``) and
parameters, optimiser state and the training set are replicated (``P()``). Nothing is
written per device: inside ``jax.jit`` XLA's SPMD partitioner (GSPMD; Xu et al. 2021,
"GSPMD: General and Scalable Parallelization for ML Computation Graphs") splits every
per-example computation, and a sum or mean over the batch becomes a local sum followed by
one ``all-reduce`` over ``"data"`` — the gradient all-reduce of data-parallel SGD, or EM's
sufficient statistics ``sum_n gamma_nk``, ``sum_n gamma_nk x_n`` summed across devices.
No ``pmap``, no per-device code, and one device is just a mesh of size one.

Several hosts: start every process with the same command after
:func:`initialize_distributed` (``genjax train --distributed``); ``jax.devices()`` then
lists every device of every host, the mesh spans them all, and each process feeds the
same (replicated) data. See the README's "Scale" section.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PyTree = Any

#: The mesh axis the batch is laid over.
DATA_AXIS = "data"

#: The collectives :func:`count_collectives` counts in compiled HLO text.
COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")


def make_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh ``("data",)`` over the first ``devices`` devices (default: all).

    Args:
      devices: how many devices to use, in ``[1, jax.device_count()]``; ``None`` for all.
        Across several hosts (``jax.process_count() > 1``) a run must use every device,
        since each process drives its own.

    Returns:
      A :class:`jax.sharding.Mesh` of shape ``(devices,)`` with axis name ``"data"``.
    """
    available = jax.devices()
    n = len(available) if devices is None else int(devices)
    if not 1 <= n <= len(available):
        raise ValueError(f"devices must be in [1, {len(available)}] (the visible devices), got {n}")
    if jax.process_count() > 1 and n != len(available):
        raise ValueError(
            f"devices: a run over {jax.process_count()} processes uses all {len(available)} "
            f"devices, got {n}"
        )
    return Mesh(np.asarray(available[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (parameters, optimiser state, the training set)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (example) axis laid over ``"data"``; the other axes whole on each device."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """ValueError unless ``batch_size`` splits evenly over the mesh's devices."""
    if batch_size % mesh.size:
        raise ValueError(
            f"batch_size {batch_size} does not divide over {mesh.size} devices; use a multiple "
            f"of {mesh.size} (e.g. {mesh.size * max(1, round(batch_size / mesh.size))}) or "
            f"fewer devices (--devices)"
        )


def put_replicated(tree: PyTree, mesh: Mesh) -> PyTree:
    """``tree``'s arrays replicated over ``mesh``.

    With several processes each one holds the same value (same data, same seed) and
    contributes its own devices' copies (``jax.make_array_from_callback``); a plain
    ``device_put`` suffices on one host.
    """
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
            # typed keys travel as their raw uint32 data and are re-wrapped
            return jax.random.wrap_key_data(put(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        value = np.asarray(x)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(put, tree)


def to_local(x: Any) -> Any:
    """A replicated global array as an array this process can read (its first local copy)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x.addressable_data(0)
    return x


def on_one_device(tree: PyTree) -> PyTree:
    """A replicated pytree as single-device arrays (this process's first copy)."""
    return jax.tree.map(
        lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree
    )


def is_main_process() -> bool:
    """True on the process that writes files (process 0; the only one on a single host)."""
    return jax.process_index() == 0


def initialize_distributed() -> None:
    """``jax.distributed.initialize()``, once, before any device is touched.

    The coordinator, the number of processes and this process's id come from the cluster
    (SLURM, Open MPI, Kubernetes, Cloud TPU: detected by JAX) or from the environment:
    ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``.
    """
    kwargs: dict[str, Any] = {}
    if "JAX_NUM_PROCESSES" in os.environ:
        kwargs["num_processes"] = int(os.environ["JAX_NUM_PROCESSES"])
    if "JAX_PROCESS_ID" in os.environ:
        kwargs["process_id"] = int(os.environ["JAX_PROCESS_ID"])
    jax.distributed.initialize(**kwargs)


def sample(
    sample_fn: Callable[..., Any], key: jax.Array, params: PyTree, n: int, *, mesh: Mesh,
    **options: Any,
) -> Any:
    """``sample_fn(key, params, n, **options)`` with its batch axis laid over ``mesh``.

    The sampler is traced once for ``n_pad = ceil(n / d) * d`` samples (``d`` devices;
    ``n`` is rounded up so that every device draws the same number) with its output
    constrained to ``P("data")``: the SPMD partitioner propagates that layout back through
    the sampler's loop, so each device draws and denoises its own ``n_pad / d`` rows; the
    first ``n`` rows are returned. JAX's partitionable Threefry (the default) draws the
    random bits of row ``i`` from ``(key, i)`` alone, so the samples do not depend on ``d``.

    A sampler that cannot be traced (it returns text, or NumPy arrays) or whose outputs
    lack the leading ``n_pad`` axis runs as it is, on one device, with ``n``.

    Returns:
      What ``sample_fn`` returns, each leaf trimmed to ``n`` rows (gathered to every
      process when there are several hosts).
    """
    program, n_pad = sampling_program(sample_fn, key, params, n, mesh=mesh, **options)
    if program is None:
        # On one device: run eagerly on replicated arrays, each op would repeat on all.
        return sample_fn(key, on_one_device(params), n, **options)
    out = program(put_replicated(key, mesh), put_replicated(params, mesh))
    out = jax.tree.map(lambda a: a[:n], out)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        out = multihost_utils.process_allgather(out, tiled=True)
    return out


def sampling_program(
    sample_fn: Callable[..., Any], key: jax.Array, params: PyTree, n: int, *, mesh: Mesh,
    **options: Any,
) -> tuple[Callable[[jax.Array, PyTree], Any] | None, int]:
    """The jitted ``(key, params) -> samples`` that :func:`sample` runs, and ``n_pad``.

    The program is None when ``sample_fn`` cannot run sharded (see :func:`sample`).
    """
    n_pad = math.ceil(n / mesh.size) * mesh.size

    def draw(key, params):
        return sample_fn(key, params, n_pad, **options)

    try:
        shapes = jax.eval_shape(draw, key, params)
    except (jax.errors.JAXTypeError, TypeError):
        return None, n  # not traceable: text, NumPy, ...
    leaves = jax.tree.leaves(shapes)
    if not leaves or any(not s.shape or s.shape[0] != n_pad for s in leaves):
        return None, n
    everywhere = replicated(mesh)
    program = jax.jit(draw, in_shardings=(everywhere, everywhere),
                      out_shardings=batch_sharded(mesh))
    return program, n_pad


def count_collectives(hlo_text: str) -> dict[str, int]:
    """How many of each collective (:data:`COLLECTIVES`) an HLO module's text holds.

    Counts instructions (``all-reduce(`` and the async ``all-reduce-start(``), not names.
    """
    return {
        op: len(re.findall(rf"\s{op}(?:-start)?\(", hlo_text)) for op in COLLECTIVES
    }
