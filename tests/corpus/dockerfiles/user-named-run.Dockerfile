FROM busybox
RUN mkdir -m 777 /out
USER www-data
RUN id -u > /out/id && id -g >> /out/id && touch /out/mine
