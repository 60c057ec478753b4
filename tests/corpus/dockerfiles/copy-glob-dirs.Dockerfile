FROM busybox
COPY d* /out/
COPY *.txt /txt/
