"""User-facing errors of the metrics package.

Every message is one line that names the metric, option or file at fault and what was expected, so
`calc_metrics.py` can print it as is and exit with status 2.
"""


class MetricError(ValueError):
    """A problem the user can fix: unknown metric, mismatched data, a generator without a needed interface."""


class DetectorUnavailable(MetricError):
    """A detector network (Inception, VGG16, a classifier) cannot be found locally and cannot be downloaded."""
