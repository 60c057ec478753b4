FROM busybox AS builder
RUN echo built > /artifact
FROM busybox
COPY --from=builder /artifact /artifact
COPY --from=0 /etc/hostname /hostname
COPY --from=busybox:latest /bin/busybox /bb
