FROM busybox
COPY <<-"END" /script.sh
	#!/bin/sh
	echo $literal
	END
