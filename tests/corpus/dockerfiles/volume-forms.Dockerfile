FROM busybox
VOLUME /data
VOLUME /a /b
VOLUME ["/json1", "/json2"]
