FROM busybox
COPY <<EOF /etc/greeting
hello $USER
EOF
