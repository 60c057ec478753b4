FROM busybox
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
ENTRYPOINT exec top -b
