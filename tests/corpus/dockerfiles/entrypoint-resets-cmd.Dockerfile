FROM busybox
ENTRYPOINT ["echo"]
