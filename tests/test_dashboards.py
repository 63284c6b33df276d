"""The Grafana provisioning in dashboards/: well-formed, and querying only what the gateway writes.

Every measurement, field and tag a Flux query names is checked against gateway/measurements.py,
through its public functions: one sample point per measurement, with every optional field set.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import measurements
from varco.protocol import DeskEvent, DeviceState, DoorEvent, DoorState, Reason, Status

ROOT = Path(__file__).parents[1]
DASHBOARDS = ROOT / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
DATASOURCE_UID = "varco-influxdb"
EXPECTED = {"occupancy.json", "utilisation.json", "access.json", "devices.json"}


def samples() -> list[measurements.Sample]:
    """One point per measurement, built as the gateway builds them, every field present."""
    at = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    access = measurements.access_point(
        {
            "site": "main",
            "door_id": "front",
            "granted": False,
            "reason": Reason.WRONG_ZONE,
            "decided_offline": True,
            "tapped_at": at,
        }
    )
    door = measurements.door_point(
        "main", DoorEvent(event_id="e-door-1", door="front", state=DoorState.HELD_OPEN, at=at)
    )
    desk = measurements.desk_point(
        "main", DeskEvent(event_id="e-desk-1", desk="d1", occupied=True, at=at), area="north"
    )
    status = Status(
        state=DeviceState.ONLINE,
        software="test",
        started_at=at - timedelta(hours=1),
        at=at,
        uptime_seconds=3600.0,
        allowlist_issued_at=at - timedelta(minutes=5),
        outbox_depth=2,
    )
    device = measurements.device_point("main", "pi-1", status)
    return [access, door, desk, device]


def schema() -> dict[str, set[str]]:
    """Each measurement's fields, from the sample points."""
    fields: dict[str, set[str]] = {}
    for sample in samples():
        fields.setdefault(sample.measurement, set()).update(sample.fields)
    return fields


# The values a query may compare a tag with, where the set is closed.
TAG_VALUES: dict[str, set[str]] = {
    "result": {"granted", "denied"},
    "reason": {reason.value for reason in Reason},
    "state": {state.value for state in DoorState},
}


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["query"])
        for path in dashboard_files()
        for panel in panels(load(path))
        for target in panel.get("targets", [])
    ]


def test_the_schema_comes_from_the_gateway() -> None:
    fields = schema()

    assert set(fields) == {
        measurements.ACCESS,
        measurements.DOOR,
        measurements.DESK,
        measurements.DEVICE,
    }
    for sample in samples():
        assert set(sample.tags) <= measurements.TAGS


def test_every_expected_dashboard_is_there() -> None:
    assert {path.name for path in dashboard_files()} == EXPECTED


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)
def test_a_dashboard_is_well_formed_grafana_json(path: Path) -> None:
    dashboard = load(path)

    for key in ("title", "uid", "schemaVersion", "panels"):
        assert key in dashboard, key
    assert isinstance(dashboard["schemaVersion"], int)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    all_panels = panels(dashboard)
    assert all_panels
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in all_panels:
        for key in ("id", "type", "title", "gridPos"):
            assert key in panel, f"{panel.get('title')}: no {key}"
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"}
        assert all(type(grid[key]) is int for key in grid), grid
        assert grid["x"] >= 0, grid
        assert grid["x"] + grid["w"] <= 24, grid
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
            assert target["refId"]
            assert target["query"].strip()


def test_dashboard_uids_and_titles_are_unique() -> None:
    dashboards = [load(path) for path in dashboard_files()]

    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    assert len({d["title"] for d in dashboards}) == len(dashboards)


def test_the_bucket_is_a_variable_defaulting_to_varco() -> None:
    for path in dashboard_files():
        variables = {v["name"]: v for v in load(path)["templating"]["list"]}
        assert variables["bucket"]["query"] == "varco", path.name
        assert variables["bucket"]["current"]["value"] == "varco", path.name


def group_columns(query: str) -> set[str]:
    columns: set[str] = set()
    for listed in re.findall(r"group\(\s*columns:\s*\[([^\]]*)\]", query):
        columns.update(re.findall(r'"([^"]*)"', listed))
    return columns


@pytest.mark.parametrize(("where", "query"), queries(), ids=[w for w, _ in queries()])
def test_a_query_uses_only_what_the_gateway_writes(where: str, query: str) -> None:
    fields = schema()
    measured = re.findall(r'r\._measurement\s*==\s*"([^"]*)"', query)
    named_fields = re.findall(r'r\._field\s*==\s*"([^"]*)"', query)
    # Columns the query makes itself (map(fn: (r) => ({r with name: ...}))) are not tags.
    made = set(re.findall(r"\bwith\s+(\w+)\s*:", query))
    used = set(re.findall(r"\br\.(\w+)", query)) | set(re.findall(r'\br\["(\w+)"\]', query))
    columns = (used | group_columns(query)) - made

    assert 'from(bucket: "${bucket}")' in query
    assert "range(start: v.timeRangeStart, stop: v.timeRangeStop)" in query
    assert measured, f"{where}: no measurement filter"
    for name in measured:
        assert name in fields, f"{where}: unknown measurement {name}"
    assert named_fields, f"{where}: no field filter"
    for field in named_fields:
        assert any(field in fields[name] for name in measured), f"{where}: unknown field {field}"
    for column in columns:
        if column.startswith("_"):
            assert column in {"_measurement", "_field", "_value", "_time", "_start", "_stop"}
        else:
            assert column in measurements.TAGS, f"{where}: unknown tag {column}"
    for tag, allowed in TAG_VALUES.items():
        for value in re.findall(rf'r\.{tag}\s*==\s*"([^"]*)"', query):
            assert value in allowed, f"{where}: {tag} is never {value!r}"


def test_the_windowed_queries_follow_grafanas_interval() -> None:
    windowed = [query for _, query in queries() if "aggregateWindow" in query]

    assert any("every: v.windowPeriod" in query for query in windowed)


def compose_mounts(service: str) -> dict[str, Path]:
    """The service's bind mounts: container path -> repository path."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts: dict[str, Path] = {}
    for mount in compose["services"][service].get("volumes", []):
        source, target = mount.split(":")[:2]
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def in_repository(container_path: str, mounts: dict[str, Path]) -> Path:
    """Where a path inside the Grafana container comes from in the repository."""
    for target, source in sorted(mounts.items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the repository")


def test_the_datasource_is_the_one_the_dashboards_use() -> None:
    data = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (source,) = data["datasources"]

    assert data["apiVersion"] == 1
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["version"] == "Flux"
    assert source["jsonData"]["organization"] == "${VARCO_INFLUX_ORG}"
    assert source["jsonData"]["defaultBucket"] == "${VARCO_INFLUX_BUCKET}"
    assert source["secureJsonData"]["token"] == "${VARCO_INFLUX_TOKEN}"


def test_grafana_gets_the_variables_the_datasource_expands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    text = (PROVISIONING / "datasources" / "influxdb.yaml").read_text()
    environment = compose["services"]["grafana"]["environment"]

    for variable in re.findall(r"\$\{(\w+)\}", text):
        assert variable in environment, variable


def test_the_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    data = yaml.safe_load((PROVISIONING / "dashboards" / "varco.yaml").read_text())
    (provider,) = data["providers"]
    mounts = compose_mounts("grafana")

    assert data["apiVersion"] == 1
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    folder = in_repository(provider["options"]["path"], mounts)
    assert {path.name for path in folder.glob("*.json")} == EXPECTED
    assert in_repository("/etc/grafana/provisioning", mounts) == PROVISIONING
