FROM busybox
RUN mkdir /data && echo before > /data/before
VOLUME /data /fresh/vol
RUN echo after > /data/after && echo outside > /outside && echo new > /fresh/vol/new
