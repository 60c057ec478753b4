FROM busybox
ADD --unpack=false archive.tar.gz /raw/
ADD --exclude=*.log logs/ /logs/
