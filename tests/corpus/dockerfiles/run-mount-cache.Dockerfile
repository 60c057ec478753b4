FROM busybox
RUN --mount=type=cache,target=/var/cache/x,sharing=locked echo cached
