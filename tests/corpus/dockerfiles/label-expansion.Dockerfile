FROM busybox
ARG V=1.2
LABEL version=$V "quoted key"="${V}-x"
