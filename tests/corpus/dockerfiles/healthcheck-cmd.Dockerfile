FROM busybox
HEALTHCHECK --interval=5m --timeout=3s --start-period=10s --start-interval=2s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
