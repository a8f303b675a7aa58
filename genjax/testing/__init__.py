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
* :func:`count_compilations` and the conformance suites :func:`assert_sampler_conforms` /
  :func:`assert_loss_conforms` (and the bijector suite in :mod:`genjax.flows`' tests' terms): every
  family runs its samplers and losses through the same checks -- determinism under a key,
  ``*_from_noise`` = sampler, new weights compile nothing, dtype kept, jit = eager, finite
  gradients that agree with finite differences, bad arguments named.
* :class:`BadInput` / :func:`assert_handled` -- one probe of a public function with a bad
  argument (must raise an error naming it) or a valid extreme (must stay finite and correct);
  ``python -m genjax.testing.probe`` counts every family's probes.

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

from genjax.testing import bad_inputs, bijectors, conformance, statistics, tolerances
from genjax.testing.bad_inputs import BadInput as BadInput
from genjax.testing.bad_inputs import assert_handled as assert_handled
from genjax.testing.bijectors import BijectorCase as BijectorCase
from genjax.testing.bijectors import assert_bijector_conforms as assert_bijector_conforms
from genjax.testing.conformance import LossCase as LossCase
from genjax.testing.conformance import SamplerCase as SamplerCase
from genjax.testing.conformance import assert_loss_conforms as assert_loss_conforms
from genjax.testing.conformance import assert_sampler_conforms as assert_sampler_conforms
from genjax.testing.conformance import count_compilations as count_compilations
from genjax.testing.statistics import ChiSquareResult as ChiSquareResult
from genjax.testing.statistics import MomentTestResult as MomentTestResult
from genjax.testing.statistics import chi2_sf as chi2_sf
from genjax.testing.statistics import chi_square_test as chi_square_test
from genjax.testing.statistics import effective_sample_size as effective_sample_size
from genjax.testing.statistics import moment_ztest as moment_ztest
from genjax.testing.statistics import normal_isf as normal_isf
from genjax.testing.statistics import normal_sf as normal_sf
from genjax.testing.tolerances import TOLERANCES as TOLERANCES
from genjax.testing.tolerances import assert_close_to_oracle as assert_close_to_oracle
from genjax.testing.tolerances import tolerance as tolerance

__all__ = [
    *tolerances.__all__,
    *statistics.__all__,
    *conformance.__all__,
    *bijectors.__all__,
    # bad_inputs' classify and probe stay in their module (genjax.testing.probe is the
    # command-line module): only the names imported above
    *(name for name in bad_inputs.__all__ if name in ("BadInput", "assert_handled")),
]
