FROM busybox
RUN <<A <<B
echo first
A
echo second
B
