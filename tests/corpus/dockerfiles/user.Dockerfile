FROM busybox
USER nobody
USER 1000:1000
ARG U=daemon
USER $U
