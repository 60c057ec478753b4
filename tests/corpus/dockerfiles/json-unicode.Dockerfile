FROM busybox
CMD ["echo", "h\u00e9llo", "你好"]
LABEL greeting="你好"
