"""Gaussian mixtures fitted by expectation-maximisation.

Files, by concept:

* ``params.py`` -- :class:`GMMParams` (weights, means, covariances: full ``(K, D, D)``,
  diagonal ``(K, D)`` or spherical ``(K,)``) and the covariance algebra (Cholesky
  whitening, free-parameter count);
* ``em.py`` -- E-step, M-step, one fused EM iteration, ``log_prob``, ``predict``, BIC;
* ``init.py`` -- k-means++ and random initialisation (noise-injectable);
* ``fit.py`` -- the EM loop in one ``lax.while_loop`` (early stop at ``tol``);
* ``sample.py`` -- ancestral sampling;
* ``oracle.py`` -- the NumPy float64 twin of all of the above;
* ``recipes.py`` -- ``genjax train gmm``.

Example:
  >>> from genjax import data, mixture
  >>> x = data.load("ring")[:512]
  >>> params, history = mixture.fit(jax.random.key(0), x, k=8, max_iter=20)
  >>> mixture.log_prob(params, x).shape, mixture.bic(params, x).shape
  ((512,), ())
  >>> mixture.sample(jax.random.key(1), params, 1000).shape
  (1000, 2)

Reference: C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, §9.2.
"""

from genjax.mixture.em import bic as bic
from genjax.mixture.em import component_log_prob as component_log_prob
from genjax.mixture.em import e_step as e_step
from genjax.mixture.em import em_step as em_step
from genjax.mixture.em import log_prob as log_prob
from genjax.mixture.em import m_step as m_step
from genjax.mixture.em import predict as predict
from genjax.mixture.em import predict_proba as predict_proba
from genjax.mixture.fit import EMHistory as EMHistory
from genjax.mixture.fit import fit as fit
from genjax.mixture.init import INIT_METHODS as INIT_METHODS
from genjax.mixture.init import initialize as initialize
from genjax.mixture.init import kmeans_plusplus as kmeans_plusplus
from genjax.mixture.init import kmeans_plusplus_from_noise as kmeans_plusplus_from_noise
from genjax.mixture.init import params_from_centres as params_from_centres
from genjax.mixture.init import random_from_noise as random_from_noise
from genjax.mixture.params import COVARIANCE_TYPES as COVARIANCE_TYPES
from genjax.mixture.params import GMMParams as GMMParams
from genjax.mixture.params import full_covariances as full_covariances
from genjax.mixture.params import n_parameters as n_parameters
from genjax.mixture.params import precision_cholesky as precision_cholesky
from genjax.mixture.sample import sample as sample
from genjax.mixture.sample import sample_from_noise as sample_from_noise
