"""Volumes through sampand: create/ls/inspect/rm/prune, named and anonymous volumes in
containers, copy-up of image content, binds, tmpfs, in-use refusals, image in use."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_volume_crud(api: Api) -> None:  # noqa: F811
    v = api.call("POST", "/volumes/create", {"Name": "data1", "Labels": {"team": "a"}}, status=201)
    assert v["Name"] == "data1" and v["Driver"] == "local" and v["Labels"] == {"team": "a"}
    assert v["Mountpoint"].endswith("/volumes/data1/_data") and Path(v["Mountpoint"]).is_dir()
    assert v["Scope"] == "local" and v["CreatedAt"]
    again = api.call("POST", "/volumes/create", {"Name": "data1"}, status=201)  # idempotent
    assert again["Labels"] == {"team": "a"}
    anon = api.call("POST", "/volumes/create", {}, status=201)
    assert len(anon["Name"]) == 64
    assert api.call("GET", "/volumes/data1", status=200)["Name"] == "data1"
    names = {x["Name"] for x in api.call("GET", "/volumes", status=200)["Volumes"]}
    assert names == {"data1", anon["Name"]}
    q = urllib.parse.quote(json.dumps({"label": ["team=a"]}))
    assert [x["Name"] for x in api.call("GET", f"/volumes?filters={q}", status=200)["Volumes"]] == ["data1"]
    assert api.status("GET", "/volumes/nope") == (404, {"message": "get nope: no such volume"})
    assert api.status("POST", "/volumes/create", {"Name": "bad/name"})[0] == 400
    assert api.status("POST", "/volumes/create", {"Name": "x", "Driver": "nfsplugin"})[0] == 404
    pruned = api.call("POST", "/volumes/prune", status=200)  # anonymous only by default
    assert pruned["VolumesDeleted"] == [anon["Name"]]
    q = urllib.parse.quote(json.dumps({"all": ["true"]}))
    assert api.call("POST", f"/volumes/prune?filters={q}", status=200)["VolumesDeleted"] == ["data1"]
    assert api.status("DELETE", "/volumes/data1")[0] == 404
    assert api.status("DELETE", "/volumes/data1?force=1")[0] == 204


def test_named_volume_copy_up_and_persistence(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "ls /etc/passwd && echo hello > /etc/new"], host={"Binds": ["etcvol:/etc"]})
    assert api.wait(cid)["StatusCode"] == 0
    info = api.inspect(cid)
    [m] = info["Mounts"]
    assert (m["Type"], m["Name"], m["Destination"], m["RW"], m["Driver"]) == ("volume", "etcvol", "/etc", True, "local")
    data = Path(m["Source"])
    assert (data / "passwd").is_file() and (data / "new").read_text() == "hello\n"
    code, body = api.status("DELETE", "/volumes/etcvol")
    assert code == 409 and "volume is in use" in body["message"]
    reader = api.run(["cat", "/data/new"], host={"Mounts": [{"Type": "volume", "Source": "etcvol", "Target": "/data", "ReadOnly": True}]})
    api.wait(reader)
    assert api.output(reader) == "hello\n"
    q = urllib.parse.quote(json.dumps({"volume": ["etcvol"]}))
    assert {c["Id"] for c in api.call("GET", f"/containers/json?all=1&filters={q}", status=200)} == {cid, reader}
    r = api.d.request("GET", f"/events?since=0&until={int(time.time()) + 1}&filters=" + urllib.parse.quote(json.dumps({"type": ["volume"]})))
    actions = [(e["Action"], e["Actor"]["ID"]) for e in r.lines()]
    assert ("create", "etcvol") in actions and ("mount", "etcvol") in actions and ("unmount", "etcvol") in actions
    api.call("DELETE", f"/containers/{cid}?v=1", status=204)  # a named volume survives rm -v
    api.call("DELETE", f"/containers/{reader}", status=204)
    assert api.call("GET", "/volumes/etcvol", status=200)
    api.call("DELETE", "/volumes/etcvol", status=204)


def test_anonymous_volume_goes_with_rm_v(api: Api) -> None:  # noqa: F811
    cid = api.create(["true"], Volumes={"/cache": {}})
    [m] = api.inspect(cid)["Mounts"]
    assert m["Type"] == "volume" and len(m["Name"]) == 64
    api.call("DELETE", f"/containers/{cid}?v=1", status=204)
    assert api.status("GET", f"/volumes/{m['Name']}")[0] == 404


def test_bind_tmpfs_and_readonly(api: Api, tmp_path: Path) -> None:  # noqa: F811
    host_dir = tmp_path / "share"
    host_dir.mkdir()
    (host_dir / "in").write_text("from host\n")
    cid = api.run(
        ["sh", "-c", "cat /s/in; echo back > /s/out; touch /ro/x 2>/dev/null || echo rofail; grep ' /t ' /proc/mounts | cut -d' ' -f3"],
        host={"Binds": [f"{host_dir}:/s", f"{host_dir}:/ro:ro"], "Tmpfs": {"/t": "size=1m"}},
    )
    assert api.wait(cid)["StatusCode"] == 0
    assert api.output(cid) == "from host\nrofail\ntmpfs\n"
    assert (host_dir / "out").read_text() == "back\n"
    missing = tmp_path / "made"
    api.create(["true"], host={"Binds": [f"{missing}:/m"]})
    assert missing.is_dir()  # -v creates a missing host directory
    code, body = api.status("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": str(tmp_path / "nope"), "Target": "/x"}]}})
    assert code == 400 and "bind source path does not exist" in body["message"]


def test_image_in_use_is_refused(api: Api) -> None:  # noqa: F811
    cid = api.create(["true"])
    image_id = api.inspect(cid)["Image"]
    code, body = api.status("DELETE", f"/images/{image_id}")
    assert code == 409, body
    api.call("DELETE", f"/containers/{cid}", status=204)


def test_system_df_and_info_count_containers_and_volumes(api: Api) -> None:  # noqa: F811
    running = api.run(["sleep", "60"], host={"Binds": ["dfvol:/d"]})
    stopped = api.run(["sh", "-c", "head -c 100000 /dev/zero > /big"])
    api.wait(stopped)
    df = api.call("GET", "/system/df", status=200)
    sizes = {c["Id"]: c["SizeRw"] for c in df["Containers"]}
    assert set(sizes) == {running, stopped} and sizes[stopped] >= 100000
    assert [i["Containers"] for i in df["Images"]] == [2]
    [vol] = df["Volumes"]
    assert vol["Name"] == "dfvol" and vol["UsageData"]["RefCount"] == 1
    info = api.call("GET", "/info", status=200)
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (2, 1, 1)


def test_local_driver_options(api: Api, tmp_path: Path) -> None:  # noqa: F811
    opts = {"type": "tmpfs", "device": "tmpfs", "o": "size=4m,mode=1777"}
    v = api.call("POST", "/volumes/create", {"Name": "tmpvol", "DriverOpts": opts}, status=201)
    assert v["Options"] == opts
    cid = api.run(["sh", "-c", "echo hi > /d/f; grep ' /d ' /proc/mounts | cut -d' ' -f3"], host={"Binds": ["tmpvol:/d"]})
    assert api.wait(cid)["StatusCode"] == 0
    assert api.output(cid) == "tmpfs\n"
    assert (Path(v["Mountpoint"]) / "f").read_text() == "hi\n"  # the host sees the same tmpfs
    host_dir = tmp_path / "srv"
    host_dir.mkdir()
    (host_dir / "x").write_text("from host\n")
    api.call("POST", "/volumes/create", {"Name": "bindvol", "DriverOpts": {"type": "none", "o": "bind", "device": str(host_dir)}}, status=201)
    reader = api.run(["cat", "/b/x"], host={"Binds": ["bindvol:/b"]})
    api.wait(reader)
    assert api.output(reader) == "from host\n"
    assert api.status("POST", "/volumes/create", {"Name": "bad", "DriverOpts": {"size": "1g"}})[0] == 400
    for c in (cid, reader):
        api.call("DELETE", f"/containers/{c}", status=204)
    api.call("DELETE", "/volumes/tmpvol", status=204)
    api.call("DELETE", "/volumes/bindvol", status=204)
    assert (host_dir / "x").exists()  # removing a bind volume leaves its device alone
