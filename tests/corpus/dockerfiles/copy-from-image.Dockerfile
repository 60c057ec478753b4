FROM scratch
COPY --from=busybox /bin/busybox /bin/sh /bin/
