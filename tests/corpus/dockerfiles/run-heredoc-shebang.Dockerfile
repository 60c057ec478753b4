FROM busybox
RUN <<EOF
#!/bin/sh
set -e
echo $HOME
EOF
