FROM busybox
COPY links/ /links/
COPY links/to-file /followed
