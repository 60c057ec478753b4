FROM busybox
ARG VERSION=1.0
ARG UNSET
ARG FLAVOR=plain
ENV FLAVOR=env-wins
RUN echo "$VERSION ${UNSET:-none} $FLAVOR" > /args
