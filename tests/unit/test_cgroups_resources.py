"""OCI linux.resources validation: every error names its field."""

from __future__ import annotations

from typing import Any

import pytest

from sampan.errors import InvalidConfig
from sampan.runtime.cgroups.resources import DeviceRule, parse_resources


def test_full_docker_like_resources() -> None:
    r = parse_resources(
        {
            "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 2 << 30},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
            },
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ],
        }
    )
    assert r.memory_limit == 1 << 30 and r.memory_swap == 2 << 30
    assert r.cpus == "0-1" and r.cpu_shares == 512 and r.pids_limit == 100
    assert r.throttle_read_bps[0].value == 1024
    assert r.devices[0] == DeviceRule(False, "a", None, None, "rwm")
    assert r.devices[0].v1_line() == "a *:* rwm"
    assert r.devices[1].v1_line() == "c 1:3 rwm"


def test_empty_and_none() -> None:
    assert parse_resources(None).memory_limit is None
    assert parse_resources({}).devices == []


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit"),
        ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
        ({"memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap"),
        ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
        ({"memory": {"disableOOMKiller": "yes"}}, "linux.resources.memory.disableOOMKiller"),
        ({"cpu": {"cpus": "zero"}}, "linux.resources.cpu.cpus"),
        ({"cpu": {"shares": True}}, "linux.resources.cpu.shares"),
        ({"cpu": []}, "linux.resources.cpu"),
        ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
        (
            {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}},
            "linux.resources.blockIO.throttleReadBpsDevice[0]",
        ),
        ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
        ({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access"),
        ({"devices": [{"type": "c"}]}, "linux.resources.devices[0].allow"),
        ({"unified": {"../x": "1"}}, "linux.resources.unified"),
    ],
)
def test_bad_values_name_the_field(resources: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_resources(resources)
    assert info.value.field.startswith(field)
    assert "\n" not in str(info.value)


def test_zero_means_unset_as_in_runc() -> None:
    r = parse_resources({"pids": {"limit": 0}, "memory": {"reservation": 0, "swappiness": 0}})
    assert r.pids_limit is None and r.memory_reservation is None
    assert r.memory_swappiness == 0  # a real value
    assert parse_resources({"pids": {"limit": -1}}).pids_limit == -1
