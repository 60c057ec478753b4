#!/bin/bash
# mkimage-busybox.sh OUTPUT.tar
# Make a busybox root filesystem tar from Debian's busybox-static, with no registry:
# the static binary, one symlink per applet, /etc/passwd and /etc/group, and the usual
# empty directories. The tar is deterministic (sorted, numeric owners, fixed mtime) so the
# same busybox gives the same layer digest. `sampan import -c 'CMD ["sh"]' OUTPUT.tar busybox`
# turns it into an image.
set -euo pipefail
out=${1:?usage: mkimage-busybox.sh OUTPUT.tar}
bb=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root,var/spool/mail,var/www,run,home,usr/bin,usr/sbin,sbin}
chmod 1777 "$r/tmp"
chmod 700 "$r/root"
cp "$bb" "$r/bin/busybox"
for applet in $("$bb" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$r/$(dirname "$applet")"
  # relative links so the tree is correct wherever it is extracted
  case $(dirname "$applet") in
    bin) ln -sf busybox "$r/$applet" ;;
    sbin) ln -sf ../bin/busybox "$r/$applet" ;;
    *) ln -sf ../../bin/busybox "$r/$applet" ;;   # usr/bin, usr/sbin
  esac
done
cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat >"$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
G
: >"$r/etc/hosts"; : >"$r/etc/resolv.conf"; : >"$r/etc/hostname"
echo '<html><body>hello from busybox httpd</body></html>' >"$r/var/www/index.html"
tmp=$out.tmp.$$
tar -C "$r" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1700000000 -cf "$tmp" .
mv "$tmp" "$out"
echo "$out"
