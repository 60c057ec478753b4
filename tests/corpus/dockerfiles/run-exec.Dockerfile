FROM busybox
RUN ["/bin/sh", "-c", "echo exec > /exec"]
