FROM busybox
ADD --chown=1000:1000 --chmod=0644 file.txt /dst/
ADD --link archive.tar /unpacked/
