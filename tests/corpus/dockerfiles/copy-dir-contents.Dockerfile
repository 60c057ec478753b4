FROM busybox
COPY dir /dst
COPY dir/ /dst2/
COPY dir/sub /dst3/
