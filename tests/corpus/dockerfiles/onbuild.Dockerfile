FROM busybox
ONBUILD RUN echo triggered
ONBUILD COPY . /app
ONBUILD ENV A=1
