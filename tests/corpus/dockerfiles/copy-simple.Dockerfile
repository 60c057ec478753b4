FROM busybox
COPY hello.txt /hello.txt
COPY a.txt b.txt /multi/
COPY *.txt /glob/
