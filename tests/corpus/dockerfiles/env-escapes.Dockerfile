FROM busybox
ENV A=\$NOT B='$single' C="$A-double"
ENV D=${A}x E=$A-
