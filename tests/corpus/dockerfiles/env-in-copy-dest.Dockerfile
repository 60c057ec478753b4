FROM busybox
ENV DEST=/srv/app FILE=conf
COPY a ${DEST}/
COPY a $DEST/$FILE.txt
WORKDIR $DEST
