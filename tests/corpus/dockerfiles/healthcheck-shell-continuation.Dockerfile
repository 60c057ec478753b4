FROM busybox
HEALTHCHECK --retries=5 \
  CMD test -f /ready \
   || exit 1
