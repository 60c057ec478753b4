ARG GLOBAL=g
FROM busybox
RUN echo ${GLOBAL:-unset}
ARG GLOBAL
RUN echo $GLOBAL
