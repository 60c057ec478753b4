   FROM busybox
	RUN echo tabbed
      CMD echo spaced
