FROM busybox
COPY data/ /data/
RUN rm /data/gone.txt && rm -r /data/olddir /root
RUN rm -rf /data/opaque && mkdir /data/opaque && echo new > /data/opaque/new.txt
