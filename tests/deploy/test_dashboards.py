"""Every PromQL expression of the Grafana dashboard and of Prometheus' alerts reads series the
services export, with labels those series have; the dashboard reads the provisioned datasource
and graphs every series family the services export."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from shared.settings import get_settings
from tests.conftest import Services, clear_process_caches
from tests.deploy import deploy_files as files
from tests.deploy.exported_metrics import exported
from tests.deploy.promql import read

# Series Prometheus itself adds to every target, and the labels it attaches to every series.
PROMETHEUS_SERIES = {"up": frozenset()}
TARGET_LABELS = {"job", "instance"}


@pytest.fixture(scope="module")
def series(services: Services) -> Iterator[dict[str, frozenset[str]]]:
    """What a scrape of the API and of a worker shows, the scrape-time gauges read from the test
    Redis."""
    import api.metrics
    import worker.metrics
    from worker.policies import get_policies

    clear_process_caches()
    get_policies.cache_clear()
    assert get_settings().redis_url == services.redis_url
    yield {**exported(api.metrics, worker.metrics), **PROMETHEUS_SERIES}
    get_policies.cache_clear()


def _dashboard_expressions() -> list[tuple[str, str]]:
    return [
        (f"dashboard panel {panel['title']!r}", target["expr"])
        for panel in files.dashboard_panels()
        for target in panel.get("targets", [])
    ]


def _alert_rules_files() -> list[str]:
    prometheus = files.services()["prometheus"]
    return [
        str(files.repository_path(prometheus, path))
        for path in files.prometheus_config().get("rule_files", [])
    ]


def _alert_expressions() -> list[tuple[str, str]]:
    return [
        (f"rule {rule.get('alert') or rule.get('record')!r}", rule["expr"])
        for path in _alert_rules_files()
        for group in yaml.safe_load(open(path))["groups"]
        for rule in group["rules"]
    ]


EXPRESSIONS = _dashboard_expressions() + _alert_expressions()


def test_the_reader_finds_selectors_and_label_lists() -> None:
    """The PromQL reader these tests rely on tells metrics from functions, label names,
    durations, strings and Grafana's variables."""
    reading = read(
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{x="1", y!~"b|c"}'
        "[$__rate_interval]))) / on (job) group_left (z) b offset 5m > bool 0.5 "
        "or sum without (w) (c[1h:5m])"
    )
    assert {(s.metric, s.labels) for s in reading.selectors} == {
        ("a_bucket", frozenset({"x", "y"})),
        ("b", frozenset()),
        ("c", frozenset()),
    }
    assert reading.grouping_labels == {"le", "model", "job", "z", "w"}


def test_there_are_expressions_to_check() -> None:
    """The dashboard and the alert rules were found and hold expressions."""
    assert len(_dashboard_expressions()) >= 10
    assert _alert_rules_files(), "prometheus.yml loads no rule_files"
    assert _alert_expressions()


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expressions_read_exported_series(
    series: dict[str, frozenset[str]], where: str, expr: str
) -> None:
    """Each expression names only series the services export, matches only labels those series
    carry, and groups only by labels one of its series carries."""
    reading = read(expr)
    assert reading.selectors, f"{where}: no series in {expr!r}"
    for selector in reading.selectors:
        assert selector.metric in series, (
            f"{where}: {selector.metric} is not exported by api/metrics.py or worker/metrics.py"
        )
        unknown = selector.labels - series[selector.metric] - TARGET_LABELS
        assert not unknown, f"{where}: {selector.metric} has no label {sorted(unknown)}"
    carried = set().union(*(series[m] for m in reading.metrics)) | TARGET_LABELS
    unknown = reading.grouping_labels - carried
    assert not unknown, f"{where}: no series of {expr!r} has the label {sorted(unknown)}"


def test_every_exported_family_is_on_the_dashboard(series: dict[str, frozenset[str]]) -> None:
    """A series family the services export and no panel shows is a metric nobody looks at: give
    it a panel (deploy/grafana/dashboards/promptq.json)."""
    on_dashboard = {m for _, expr in _dashboard_expressions() for m in read(expr).metrics}
    families = {_family(name) for name in series if name not in PROMETHEUS_SERIES}
    shown = {_family(name) for name in on_dashboard}
    assert families - shown == set()


def _family(series_name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
        if series_name.endswith(suffix):
            return series_name[: -len(suffix)]
    return series_name


def test_panels_use_the_provisioned_datasource() -> None:
    """Every panel and query names the datasource Grafana is provisioned with, by its uid."""
    provisioned = yaml.safe_load(
        (files.GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )
    (datasource,) = provisioned["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in files.dashboard_panels():
        if panel["type"] == "row":
            continue
        for used in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert used == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_the_dashboard_is_provisioned_from_the_repository() -> None:
    """Grafana's dashboard provider reads the folder where compose mounts
    deploy/grafana/dashboards, and the home dashboard is promptq.json there."""
    grafana = files.services()["grafana"]
    provider_file = files.GRAFANA_PROVISIONING / "dashboards" / "promptq.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    folder = files.repository_path(grafana, provider["options"]["path"])
    assert files.DASHBOARD_FILE.parent == folder
    home = files.environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert files.repository_path(grafana, home) == files.DASHBOARD_FILE
    assert files.repository_path(grafana, "/etc/grafana/provisioning") == files.GRAFANA_PROVISIONING


def test_panels_do_not_overlap() -> None:
    """Grafana stacks overlapping panels unpredictably; each cell of the grid has one panel, and
    each panel an id of its own."""
    ids = [panel["id"] for panel in files.dashboard_panels()]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in files.dashboard_panels():
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
