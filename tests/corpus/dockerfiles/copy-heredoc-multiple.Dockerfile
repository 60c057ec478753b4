FROM busybox
COPY <<one <<two /dst/
first file
one
second file
two
