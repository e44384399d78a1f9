"""The series the API and the workers export, read from their own prometheus_client objects:
the metric wrappers (Counter, Histogram, ...) of api/metrics.py and worker/metrics.py, and the
collector classes there that read Redis at scrape time."""

from __future__ import annotations

import inspect
from types import ModuleType

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

# The series a family of each type puts in a scrape, by suffix of the family's name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}


def exported(*modules: ModuleType) -> dict[str, frozenset[str]]:
    """{series name: its label names} of every metric the modules define. Collectors are called,
    so they need their backends (Redis) to answer; one that yields nothing is an error."""
    series: dict[str, frozenset[str]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                series.update(_wrapper_series(value))
            elif _is_collector_class(value, module):
                series.update(_collected_series(value()))
    return series


def _wrapper_series(metric: MetricWrapperBase) -> dict[str, frozenset[str]]:
    labels = frozenset(metric._labelnames)
    (family,) = metric.describe()
    bucket = {"_bucket": frozenset({"le"})}
    return {
        family.name + suffix: labels | bucket.get(suffix, frozenset())
        for suffix in _SUFFIXES[family.type]
    }


def _is_collector_class(value: object, module: ModuleType) -> bool:
    # The MRO, not issubclass(): Collector is an ABC, and its subclass check walks classes
    # registered with it, among them typing protocols that refuse the question.
    return (
        inspect.isclass(value)
        and value.__module__ == module.__name__
        and Collector in value.__mro__
        and MetricWrapperBase not in value.__mro__
    )


def _collected_series(collector: Collector) -> dict[str, frozenset[str]]:
    families = list(collector.collect())
    if not families:
        raise AssertionError(f"{type(collector).__name__}.collect() yielded nothing")
    series: dict[str, set[str]] = {}
    for family in families:
        if not family.samples:
            raise AssertionError(f"{family.name} from {type(collector).__name__} has no samples")
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}
