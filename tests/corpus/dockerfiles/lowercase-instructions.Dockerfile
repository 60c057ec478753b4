from busybox as lower
run echo lower
env a=b
cmd ["sh"]
