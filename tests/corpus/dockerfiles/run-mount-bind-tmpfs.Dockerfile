FROM busybox
RUN --mount=type=bind,source=.,target=/src --mount=type=tmpfs,target=/tmp,size=64m ls /src
