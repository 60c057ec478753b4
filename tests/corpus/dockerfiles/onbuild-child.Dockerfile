FROM corpus-onbuild-parent
RUN test -f /app/payload.txt && echo "A=$A"
