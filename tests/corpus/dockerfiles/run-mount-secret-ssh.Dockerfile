FROM busybox
RUN --mount=type=secret,id=token,required --mount=type=ssh cat /run/secrets/token
