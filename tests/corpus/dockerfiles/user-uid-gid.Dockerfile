FROM busybox
RUN mkdir -m 777 /shared
USER 1000:1000
RUN id -u > /shared/ids && id -g >> /shared/ids
USER 1:2
RUN touch /shared/other
