FROM busybox
COPY a /file
COPY a /dir/
COPY a relative/
WORKDIR /w
COPY a .
