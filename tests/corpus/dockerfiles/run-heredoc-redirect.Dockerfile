FROM busybox
RUN cat <<EOF > /etc/motd
welcome
EOF
