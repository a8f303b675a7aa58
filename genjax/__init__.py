"""genjax: generative modelling in JAX, each family held against a NumPy oracle.

The families live in subpackages (``genjax.counting``, ``genjax.mixture``,
``genjax.diffusion``, ``genjax.vae``, ...); the shared parts are ``genjax.targets``
(analytic distributions), ``genjax.metrics``, ``genjax.ode``, ``genjax.nn``,
``genjax.data``, ``genjax.train`` and ``genjax.testing``. Subpackages are imported on
demand so that ``import genjax`` stays cheap.
"""

__version__ = "0.1.0"

#: The generative families (subpackages), in the order the README and the docs list them.
FAMILIES: tuple[str, ...] = (
    "counting",
    "mixture",
    "vae",
    "gan",
    "flows",
    "autoregressive",
    "energy",
    "diffusion",
    "contrastive",
    "composites",
)
