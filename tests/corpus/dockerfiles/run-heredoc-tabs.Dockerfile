FROM busybox
RUN <<-EOF
	echo tab stripped
	EOF
