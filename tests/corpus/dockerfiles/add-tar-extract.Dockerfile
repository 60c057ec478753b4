FROM busybox
ADD plain.tar /plain/
ADD archive.tar.gz /gz/
ADD archive.tar.bz2 /bz2/
ADD archive.tar.xz /xz
COPY plain.tar /copied/
ADD notatar.gz /raw/
