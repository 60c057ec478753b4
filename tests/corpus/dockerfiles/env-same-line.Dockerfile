FROM busybox
ENV A=old
ENV A=new B=$A C=${A}-x
ENV D=$B
RUN echo "$A $B $C $D" > /env
