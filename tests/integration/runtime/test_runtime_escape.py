"""The escape battery: from inside a default (Docker-like) container these must fail."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

pytestmark = pytest.mark.root

BATTERY = r"""
t() { if eval "$2" >/dev/null 2>&1; then echo "ESCAPED $1"; else echo "blocked $1"; fi; }
t mount 'mount -t tmpfs none /mnt'
t bind-mount 'mount --bind /bin /mnt'
t proc-sys 'echo 1 > /proc/sys/kernel/sysrq'
t proc-sys-vm 'echo 3 > /proc/sys/vm/drop_caches'
t sysfs 'echo x > /sys/kernel/uevent_helper'
t sysfs-create 'touch /sys/sampan-escape'
t kcore 'test -e /proc/kcore && head -c 1 /proc/kcore | grep -q .'
t kmsg 'head -c 1 /dev/kmsg'
t mknod-disk 'mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda'
t mknod-mem 'mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem'
t unshare-user 'unshare -U true'
t unshare-mount 'unshare -m true'
t hostname 'hostname escaped'
t insmod 'insmod /nonexistent.ko; test $? -eq 0'
t modprobe-sysctl 'echo /tmp/x > /proc/sys/kernel/modprobe'
t chroot-escape 'chroot / true && test -e /proc/1/root/etc/shadow'
t host-procs "test \$(ls /proc | grep -c '^[0-9]') -gt 10"
t ptrace-init 'cat /proc/1/environ >/dev/null && kill -0 $(( $(cat /proc/sys/kernel/pid_max) - 1 ))'
t host-socket 'grep -q sampan-escape-probe /proc/net/unix'
t reboot 'reboot -f'
t swapoff 'swapoff -a'
t date 'date -s 2000-01-01 && date +%Y | grep -q 2000'
t sysrq 'echo h > /proc/sysrq-trigger'
t raw-disk 'ls /dev/sd* /dev/vd* /dev/nvme*'
hostname
"""


def test_escape_battery(bundle, cli, cid, tmp_path):
    host_name = socket.gethostname()
    # an abstract unix socket on the host: a container (own netns) must not see it
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.bind("\0sampan-escape-probe")
    probe.listen(1)
    try:
        cfg = bundle.config(BATTERY)
        cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        bundle.write(cfg)
        r = cli("run", "--bundle", str(bundle.path), cid, timeout=60)
    finally:
        probe.close()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    escaped = [line for line in lines if line.startswith("ESCAPED")]
    assert not escaped, r.stdout
    assert sum(line.startswith("blocked") for line in lines) == BATTERY.count("\nt ")
    assert lines[-1] == "sampan"
    assert socket.gethostname() == host_name
    assert not os.path.exists("/sys/sampan-escape")


def test_symlinks_in_rootfs_do_not_redirect_mounts(bundle, cli, cid, tmp_path):
    """Mount targets that are symlinks pointing out of the rootfs resolve inside it."""
    outside = tmp_path / "host-target"
    outside.mkdir()
    (bundle.rootfs / "abs-link").symlink_to(outside)
    (bundle.rootfs / "rel-link").symlink_to("../../../../../../../.." + str(outside))
    (bundle.rootfs / "dev-link").symlink_to("/")
    cfg = bundle.config("grep -c ' /abs-link\\| /rel-link\\|host-target' /proc/self/mountinfo; ls -d /" + str(outside).lstrip("/") + "/*")
    cfg["mounts"] += [
        {"destination": "/abs-link/m1", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/rel-link/m2", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/dev-link/" + str(outside).lstrip("/") + "/m3", "type": "tmpfs", "source": "tmpfs"},
    ]
    bundle.write(cfg)
    r = cli("run", "--bundle", str(bundle.path), cid)
    assert r.returncode == 0, r.stderr
    # nothing was created or mounted in the host directory the links point at...
    assert list(outside.iterdir()) == []
    mounts = subprocess.run(["cat", "/proc/self/mountinfo"], capture_output=True, text=True).stdout
    assert str(outside) not in mounts
    # ...the mounts landed inside the rootfs, at the links' in-rootfs meaning
    assert (bundle.rootfs / str(outside).lstrip("/") / "m1").is_dir()
    assert (bundle.rootfs / str(outside).lstrip("/") / "m3").is_dir()
