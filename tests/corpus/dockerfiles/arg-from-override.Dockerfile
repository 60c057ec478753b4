ARG BASE=does-not-exist
FROM ${BASE}
ARG BASE
RUN echo "base=$BASE" > /base
