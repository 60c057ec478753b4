FROM busybox
RUN <<"EOF"
echo $NOT_EXPANDED
EOF
RUN <<'EOT'
echo '$single'
EOT
