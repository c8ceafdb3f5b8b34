"""scikit-learn's own estimator test suite, run on nabla.MLPClassifier and MLPRegressor."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from nabla import MLPClassifier, MLPRegressor

# Checks expected to fail, with the reason (the README lists them too). Empty: every
# check scikit-learn runs on its own MLPClassifier passes here.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [MLPClassifier(), MLPRegressor()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
