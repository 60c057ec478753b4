FROM busybox
RUN <<EOF
echo from heredoc
echo second line
EOF
