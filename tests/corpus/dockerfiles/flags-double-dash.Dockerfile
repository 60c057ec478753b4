FROM busybox
RUN -- --not-a-flag
COPY -- a b
