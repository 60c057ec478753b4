FROM busybox
ARG A B=2 C="three 3"
ARG D=
RUN echo "$A $B $C $D"
