FROM busybox
RUN ["echo", hello]
RUN [ not json
