FROM busybox AS base
RUN echo base > /base
FROM base AS test
RUN echo test > /test
FROM busybox AS never
RUN exit 1
