"""Human sizes and durations (go-units' own test tables), tables and --format as docker prints them."""

from __future__ import annotations

import io
import time

import pytest

from sampan.cli.images import (
    IMAGE_HEADERS,
    IMAGE_TABLE,
    IMAGE_TABLE_DIGESTS,
    history_rows,
    image_rows,
)
from sampan.cli.output import (
    ellipsis,
    human_duration,
    human_size,
    inspect_json,
    parse_rfc3339,
    short_id,
    tabwrite,
    write_formatted,
)
from sampan.cli.system import bytes_size, df_rows

KB, MB, GB, TB, PB = 1e3, 1e6, 1e9, 1e12, 1e15


@pytest.mark.parametrize(
    "size,text",
    [(1000, "1kB"), (1024, "1.024kB"), (1000000, "1MB"), (1048576, "1.049MB"), (2 * MB, "2MB"),
     (3.42 * GB, "3.42GB"), (5.372 * TB, "5.372TB"), (2.22 * PB, "2.22PB"), (10000000000000 * PB, "1e+04YB"),
     (0, "0B"), (999, "999B")],
)
def test_human_size_matches_go_units(size: float, text: str) -> None:
    assert human_size(size) == text


def test_human_size_precision_3_as_docker_images() -> None:
    assert human_size(2138762, 3) == "2.14MB"
    assert human_size(4261205, 3) == "4.26MB"
    assert human_size(999999, 3) == "1e+03kB"  # Go's %.3g does the same


def test_bytes_size() -> None:
    assert bytes_size(1024) == "1KiB"
    assert bytes_size(25275600896) == "23.54GiB"


S, M, H = 1, 60, 3600
D = 24 * H
W, MO, Y = 7 * D, 30 * D, 365 * D


@pytest.mark.parametrize(
    "seconds,text",
    [(0.45, "Less than a second"), (1, "1 second"), (45, "45 seconds"), (59, "59 seconds"),
     (60, "About a minute"), (3 * M, "3 minutes"), (35 * M + 40, "35 minutes"), (59 * M, "59 minutes"),
     (H, "About an hour"), (H + 29 * M, "About an hour"), (H + 31 * M, "2 hours"), (3 * H + 31 * M, "4 hours"),
     (24 * H, "24 hours"), (D + 12 * H, "36 hours"), (2 * D, "2 days"), (13 * D + 5 * H, "13 days"),
     (2 * W, "2 weeks"), (2 * W + 4 * D, "2 weeks"), (MO, "4 weeks"), (MO + 2 * W, "6 weeks"),
     (2 * MO, "2 months"), (5 * MO + 2 * W, "5 months"), (24 * MO, "24 months"), (24 * MO + 2 * W, "2 years"),
     (3 * Y + 2 * MO, "3 years")],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_tabwrite_min_width_10_padding_3() -> None:
    text = tabwrite("REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\t0123456789ab\n")
    assert text == "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n"


def test_small_helpers() -> None:
    assert short_id("sha256:0123456789abcdef") == "0123456789ab"
    assert ellipsis("x" * 50, 45) == "x" * 44 + "…"
    assert parse_rfc3339("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456)
    assert parse_rfc3339("junk") is None
    assert inspect_json([{"a": "<none>&"}]) == '[\n    {\n        "a": "\\u003cnone\\u003e\\u0026"\n    }\n]'


NOW = time.time()
IMAGES = [
    {"Id": "sha256:" + "a" * 64, "RepoTags": ["busybox:latest", "localhost:5000/bb:1"],
     "RepoDigests": ["busybox@sha256:" + "d" * 64], "Created": int(NOW - 300), "Size": 4261205,
     "SharedSize": -1, "Containers": -1},
    {"Id": "sha256:" + "b" * 64, "RepoTags": [], "RepoDigests": [], "Created": int(NOW - 7200), "Size": 1000},
]


def render(fmt: str, rows: list[dict[str, str]], default: str = IMAGE_TABLE) -> str:
    out = io.StringIO()
    write_formatted(out, fmt, rows, default=default, headers=IMAGE_HEADERS)
    return out.getvalue()


def test_images_default_table() -> None:
    text = render("", image_rows(IMAGES))
    assert text.splitlines() == [
        "REPOSITORY          TAG       IMAGE ID       CREATED         SIZE",
        "busybox             latest    aaaaaaaaaaaa   5 minutes ago   4.26MB",
        "localhost:5000/bb   1         aaaaaaaaaaaa   5 minutes ago   4.26MB",
        "<none>              <none>    bbbbbbbbbbbb   2 hours ago     1kB",
    ]


def test_images_with_digests_and_no_trunc() -> None:
    rows = image_rows(IMAGES, digests=True, no_trunc=True)
    text = render("", rows, IMAGE_TABLE_DIGESTS)
    head, first = text.splitlines()[:2]
    assert head.split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert first.split()[:4] == ["busybox", "latest", "sha256:" + "d" * 64, "sha256:" + "a" * 64]


def test_custom_table_plain_and_json_formats() -> None:
    rows = image_rows(IMAGES[:1])
    assert render("table {{.Repository}}\\t{{.Tag}}", rows) == "REPOSITORY          TAG\nbusybox             latest\nlocalhost:5000/bb   1\n"
    assert render("{{.Repository}}:{{.Tag}}", rows) == "busybox:latest\nlocalhost:5000/bb:1\n"
    line = render("json", rows).splitlines()[0]
    assert line.startswith('{"Containers":"N/A","CreatedAt":') and '"Repository":"busybox"' in line
    assert render("{{json .Size}}", rows[:1]) == '"4.26MB"\n'


def test_history_rows() -> None:
    rows = history_rows([
        {"Id": "sha256:" + "c" * 64, "Created": int(NOW - 3 * D), "CreatedBy": "/bin/sh -c\t#(nop) " + "x" * 60,
         "Size": 1234567, "Comment": "imported", "Tags": ["busybox:latest"]},
        {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 0},
    ])
    assert rows[0]["ID"] == "c" * 12 and rows[0]["CreatedSince"] == "3 days ago"
    assert rows[0]["CreatedBy"].startswith("/bin/sh -c #(nop) ") and len(rows[0]["CreatedBy"]) == 45
    assert rows[0]["Size"] == "1.23MB" and rows[1]["ID"] == "<missing>"
    raw = history_rows([{"Id": "x", "Created": 0, "Size": 1234567}], human=False)[0]
    assert raw["Size"] == "1234567" and raw["CreatedSince"].startswith("1970-01-01T")


def test_system_df_rows() -> None:
    usage = {"LayersSize": 4261205, "Images": [{"Size": 4261205, "SharedSize": 0, "Containers": 0}],
             "Containers": [], "Volumes": [], "BuildCache": []}
    rows = df_rows(usage)
    assert rows[0] == {"Type": "Images", "TotalCount": "1", "Active": "0", "Size": "4.261MB", "Reclaimable": "4.261MB (100%)"}
    assert rows[3]["Reclaimable"] == "0B"
