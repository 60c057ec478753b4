FROM busybox
COPY --chown=123:456 tree/ /owned/
