FROM busybox
COPY --chown="1:1" --chmod='0600' a /a
RUN --mount="type=cache,target=/c" echo quoted
