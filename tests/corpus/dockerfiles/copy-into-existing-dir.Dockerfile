FROM busybox
RUN mkdir /existing
COPY a /existing
COPY a /newname
