FROM busybox
RUN echo 'a\\' > /x
RUN echo done
