FROM busybox
COPY --chown=nobody:nogroup --chmod=755 script.sh /usr/local/bin/
COPY --link --parents ./a/b/ /dst/
COPY --exclude=*.md --exclude=tmp docs/ /docs/
