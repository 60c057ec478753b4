FROM busybox
HEALTHCHECK CMD true
HEALTHCHECK --interval=1m30s --timeout=5s --start-period=20s --retries=4 CMD ["wget", "-q", "http://localhost/"]
