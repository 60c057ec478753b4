FROM busybox
COPY ["src dir/file", "/dest/"]
