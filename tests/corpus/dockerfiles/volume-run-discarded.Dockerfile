FROM busybox
RUN mkdir /data && echo before > /data/before
VOLUME /data
RUN echo after > /data/after && echo outside > /outside
