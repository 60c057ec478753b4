FROM busybox
ARG UID=1000
COPY --chown=${UID}:${UID} a /a
