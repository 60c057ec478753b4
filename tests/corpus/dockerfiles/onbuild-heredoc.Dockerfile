FROM busybox
ONBUILD RUN <<EOF
echo heredoc trigger
EOF
