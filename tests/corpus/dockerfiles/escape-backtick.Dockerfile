# escape=`
FROM busybox
RUN echo one `
    two
COPY a\b.txt /c\d/
