FROM busybox
CMD cat <<EOF
