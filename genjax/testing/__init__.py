"""Testing helpers: tolerances, oracle comparison, statistical checks of samplers.

What genjax's own tests use, and what a user checking a new sampler can use:

* :func:`tolerance` / :func:`assert_close_to_oracle` -- the one tolerance table (by dtype
  and by how much computation separates the two answers), applied to pytrees.
* :func:`moment_ztest` -- Bonferroni-corrected z-tests of sample means (optionally
  variances) against the exact moments of a target, with an effective sample size for
  correlated (MCMC) draws.
* :func:`chi_square_test` -- Pearson's goodness-of-fit test of category counts against
  exact probabilities, pooling cells whose expected count is below 5 (Cochran 1954).
* :func:`effective_sample_size` -- Geyer's (1992) initial positive / monotone sequence
  estimator from the autocorrelation function.
* :func:`count_compilations` and the conformance suites :func:`check_sampler` /
  :func:`check_loss` (and the bijector suite in :mod:`genjax.flows`' tests' terms): every
  family runs its samplers and losses through the same checks -- determinism under a key,
  ``*_from_noise`` = sampler, new weights compile nothing, dtype kept, jit = eager, finite
  gradients that agree with finite differences, bad arguments named.

The statistical tests are calibrated: on exact samples they fail with probability at
most ``alpha`` (asymptotically, by the central limit theorem), so with the default
``alpha = 1e-3`` and fixed seeds a correct sampler's test is stable, and a biased sampler
whose bias is several standard errors is caught. They raise ``AssertionError`` on
rejection (pass ``raise_on_failure=False`` to get the result instead) and return a
result object otherwise, which is truthy iff the test passed.

The distribution functions needed (normal tail and quantile, chi-square tail) are
computed here from ``math.erfc`` and the regularised incomplete gamma function, so SciPy
stays a test-only dependency (the tests hold these against ``scipy.stats``).

References:
  Geyer (1992), "Practical Markov chain Monte Carlo", Statistical Science 7(4), sec. 3.3.
  Cochran (1954), "Some methods for strengthening the common chi^2 tests", Biometrics.
  Press et al., Numerical Recipes (3rd ed.), sec. 6.2 (incomplete gamma function).
"""

from genjax.testing import bijectors, conformance, statistics, tolerances
from genjax.testing.bijectors import BijectorCase, check_bijector
from genjax.testing.conformance import (
    LossCase,
    SamplerCase,
    check_loss,
    check_sampler,
    count_compilations,
)
from genjax.testing.statistics import (
    ChiSquareResult,
    MomentTestResult,
    chi2_sf,
    chi_square_test,
    effective_sample_size,
    moment_ztest,
    normal_isf,
    normal_sf,
)
from genjax.testing.tolerances import TOLERANCES, assert_close_to_oracle, tolerance

__all__ = [
    *tolerances.__all__,
    *statistics.__all__,
    *conformance.__all__,
    *bijectors.__all__,
]
