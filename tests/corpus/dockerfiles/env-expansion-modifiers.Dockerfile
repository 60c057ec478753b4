FROM busybox
ENV SET=value EMPTY=
ENV A=${SET:-default} B=${UNSET:-default} C=${EMPTY:-default} D=${EMPTY-default}
ENV E=${SET:+alt} F=${UNSET:+alt} G=${EMPTY+alt}
